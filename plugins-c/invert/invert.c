/*
 * invert-c: the C twin of plugins/invert. 255 - value for red, green and blue (or luma); alpha
 * kept. Accepts rgba8 and gray8; takes no parameters. Plain C, no libc: it shows that the ABI in
 * docs/abi.md is all a plugin needs. Built by `cargo xtask build` (when clang is installed) into
 * target/plugins/invert-c.wasm.
 */
#include "../plugin_abi.h"

#define WASM_PAGE 65536u

static const char DESCRIPTION[] =
    "{\"name\":\"invert-c\",\"version\":\"0.1.0\","
    "\"description\":\"Inverts red, green and blue; keeps alpha. Written in C.\","
    "\"formats\":[\"rgba8\",\"gray8\"],\"params\":[]}";

static const char *last_error = 0;

static int32_t fail(const char *message) {
    last_error = message;
    return PLUGIN_ERROR;
}

static uint32_t bytes_per_pixel(uint32_t format) {
    return format == PLUGIN_FORMAT_RGBA8 ? 4 : format == PLUGIN_FORMAT_GRAY8 ? 1 : 0;
}

/* Whether the frame fits its buffer: stride * (height - 1) + row <= capacity, without overflow. */
static int fits(const plugin_frame_desc *frame, uint32_t bpp) {
    uint64_t row = (uint64_t)frame->width * bpp;
    if (frame->width == 0 || frame->height == 0 || frame->stride < row) return 0;
    return (uint64_t)frame->stride * (frame->height - 1) + row <= frame->capacity;
}

int32_t plugin_abi_version(void) { return PLUGIN_ABI_VERSION; }

int32_t plugin_describe(void) { return (int32_t)(uintptr_t)DESCRIPTION; }

/* Fresh pages at the end of memory for every request: 16-aligned (page-aligned), never freed.
 * The host allocates a few buffers once per instance, so nothing smarter is needed, and growing
 * (rather than assuming memory past __heap_base is free) respects the frame window the host maps
 * at the end of memory after instantiation. */
int32_t plugin_alloc(int32_t size) {
    if (size < 0) return 0;
    uint32_t pages = ((uint32_t)size + WASM_PAGE - 1) / WASM_PAGE;
    if (pages == 0) pages = 1;
    int32_t previous = (int32_t)__builtin_wasm_memory_grow(0, pages);
    if (previous < 0) return 0;
    return (int32_t)((uint32_t)previous * WASM_PAGE);
}

int32_t plugin_init(int32_t params, int32_t len) {
    /* u32 count, then the parameters; this plugin declares none, so the count must be 0. */
    const uint8_t *bytes = (const uint8_t *)(uintptr_t)params;
    if (len != 4 || bytes[0] | bytes[1] | bytes[2] | bytes[3]) return fail("invert-c takes no parameters");
    plugin_host_log(PLUGIN_LOG_DEBUG, "invert-c ready", 14);
    return PLUGIN_OK;
}

int32_t plugin_process(int32_t input, int32_t output) {
    const plugin_frame_desc *in = (const plugin_frame_desc *)(uintptr_t)input;
    plugin_frame_desc *out = (plugin_frame_desc *)(uintptr_t)output;
    uint32_t bpp = bytes_per_pixel(in->format);
    if (bpp == 0) return fail("invert-c accepts rgba8 and gray8 frames only");
    if (!fits(in, bpp)) return fail("the input frame does not fit its buffer");
    out->width = in->width;
    out->height = in->height;
    out->stride = in->width * bpp;
    out->format = in->format;
    if (!fits(out, bpp)) return fail("the output buffer is too small");
    const uint8_t *src_base = (const uint8_t *)(uintptr_t)in->data;
    uint8_t *dst_base = (uint8_t *)(uintptr_t)out->data;
    uint32_t row = in->width * bpp;
    for (uint32_t y = 0; y < in->height; y++) {
        const uint8_t *src = src_base + (uint64_t)y * in->stride;
        uint8_t *dst = dst_base + (uint64_t)y * out->stride;
        if (bpp == 4) {
            for (uint32_t x = 0; x < row; x += 4) {
                dst[x] = 255 - src[x];
                dst[x + 1] = 255 - src[x + 1];
                dst[x + 2] = 255 - src[x + 2];
                dst[x + 3] = src[x + 3];
            }
        } else {
            for (uint32_t x = 0; x < row; x++) dst[x] = 255 - src[x];
        }
    }
    return PLUGIN_OK;
}

int32_t plugin_last_error(void) { return (int32_t)(uintptr_t)last_error; }
