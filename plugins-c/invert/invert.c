/*
 * invert-c: the C twin of plugins/invert. 255 - value for red, green and blue (or luma); alpha
 * kept. In yuv420p (limited range), luma 16 + 235 - Y and chroma 16 + 240 - C, clamped to 16..235
 * and 16..240: the inverted picture (see plugins/invert). Accepts rgba8, gray8 and yuv420p; takes
 * no parameters. Plain C, no libc: it shows that the ABI in docs/abi.md is all a plugin needs.
 * Built by `cargo xtask build` (when clang is installed) into target/plugins/invert-c.wasm.
 */
#include "../plugin_abi.h"

#define WASM_PAGE 65536u

static const char DESCRIPTION[] =
    "{\"name\":\"invert-c\",\"version\":\"0.1.0\","
    "\"description\":\"Inverts red, green and blue; keeps alpha. Written in C.\","
    "\"formats\":[\"rgba8\",\"gray8\",\"yuv420p\"],\"params\":[]}";

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

/* Bytes a yuv420p frame covers with luma rows `stride` apart: the Y plane, then Cb and Cr, each
 * ceil(height / 2) rows ceil(stride / 2) apart, the last row ceil(width / 2) bytes. */
static uint64_t yuv420p_len(const plugin_frame_desc *frame) {
    uint64_t chroma_stride = ((uint64_t)frame->stride + 1) / 2, chroma_rows = ((uint64_t)frame->height + 1) / 2;
    return (uint64_t)frame->stride * frame->height + chroma_stride * (2 * chroma_rows - 1) + (frame->width + 1) / 2;
}

static int yuv420p_fits(const plugin_frame_desc *frame) {
    if (frame->width == 0 || frame->height == 0 || frame->stride < frame->width) return 0;
    return yuv420p_len(frame) <= frame->capacity;
}

static uint8_t clamp(int32_t v, int32_t lo, int32_t hi) { return (uint8_t)(v < lo ? lo : v > hi ? hi : v); }

/* One plane of `width` x `rows` samples: dst = clamp(sum - src, lo, hi). */
static void invert_plane(const uint8_t *src, uint32_t src_stride, uint8_t *dst, uint32_t dst_stride, uint32_t width,
                         uint32_t rows, int32_t lo, int32_t hi) {
    for (uint32_t y = 0; y < rows; y++) {
        const uint8_t *s = src + (uint64_t)y * src_stride;
        uint8_t *d = dst + (uint64_t)y * dst_stride;
        for (uint32_t x = 0; x < width; x++) d[x] = clamp(lo + hi - s[x], lo, hi);
    }
}

static int32_t process_yuv420p(const plugin_frame_desc *in, plugin_frame_desc *out) {
    if (!yuv420p_fits(in)) return fail("the input frame does not fit its buffer");
    out->width = in->width;
    out->height = in->height;
    out->stride = in->width;
    out->format = in->format;
    if (!yuv420p_fits(out)) return fail("the output buffer is too small");
    const uint8_t *src = (const uint8_t *)(uintptr_t)in->data;
    uint8_t *dst = (uint8_t *)(uintptr_t)out->data;
    uint32_t chroma_width = (in->width + 1) / 2, chroma_rows = (in->height + 1) / 2;
    uint32_t src_chroma = (in->stride + 1) / 2, dst_chroma = (out->stride + 1) / 2;
    invert_plane(src, in->stride, dst, out->stride, in->width, in->height, 16, 235);
    src += (uint64_t)in->stride * in->height;
    dst += (uint64_t)out->stride * out->height;
    for (int plane = 0; plane < 2; plane++) {
        invert_plane(src, src_chroma, dst, dst_chroma, chroma_width, chroma_rows, 16, 240);
        src += (uint64_t)src_chroma * chroma_rows;
        dst += (uint64_t)dst_chroma * chroma_rows;
    }
    return PLUGIN_OK;
}

/* Version 1 on purpose: it uses nothing newer, and the host runs version-1 modules unchanged
   (the tests that run this plugin check that). */
int32_t plugin_abi_version(void) { return 1; }

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
    if (in->format == PLUGIN_FORMAT_YUV420P) return process_yuv420p(in, out);
    uint32_t bpp = bytes_per_pixel(in->format);
    if (bpp == 0) return fail("invert-c accepts rgba8, gray8 and yuv420p frames only");
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
