/*
 * plugin_abi.h: the plugin-host guest ABI, version 1, for C (and anything that can include C
 * headers). The normative text is docs/abi.md; the Rust definition is plugin-sdk/src/abi.rs.
 *
 * A plugin is a core WebAssembly module (wasm32) that exports its memory as "memory" and the
 * functions declared below with PLUGIN_EXPORT, and may import plugin_host.log. Build with
 *
 *   clang --target=wasm32 -O2 -ffreestanding -fno-builtin -nostdlib -c plugin.c -o plugin.o
 *   wasm-ld --no-entry -o plugin.wasm plugin.o
 *
 * All integers are little-endian; pointers are i32 offsets into the module's linear memory.
 */
#ifndef PLUGIN_ABI_H
#define PLUGIN_ABI_H

#include <stdint.h>

#define PLUGIN_ABI_VERSION 2

/* Status returned by plugin_init and plugin_process. */
#define PLUGIN_OK 0
#define PLUGIN_ERROR 1 /* plugin_last_error says why */

/* Pixel formats (plugin_frame_desc.format). */
#define PLUGIN_FORMAT_RGBA8 1 /* 4 bytes per pixel: red, green, blue, alpha */
#define PLUGIN_FORMAT_GRAY8 2 /* 1 byte per pixel: luma */
#define PLUGIN_FORMAT_YUV420P 3 /* planar 4:2:0: Y, then Cb, then Cr (chroma stride = ceil(stride / 2)) */
#define PLUGIN_FORMAT_NV12 4 /* 4:2:0: Y, then interleaved Cb, Cr (chroma stride = 2 ceil(stride / 2)) */
#define PLUGIN_FORMAT_YUV420P10 5 /* as YUV420P, each sample a little-endian u16 of 0..1023 */

/* Log levels for plugin_host_log. */
#define PLUGIN_LOG_ERROR 1
#define PLUGIN_LOG_WARN 2
#define PLUGIN_LOG_INFO 3
#define PLUGIN_LOG_DEBUG 4
#define PLUGIN_LOG_TRACE 5

/* Parameter value tags in the buffer plugin_init receives. */
#define PLUGIN_PARAM_INT 1   /* i64 */
#define PLUGIN_PARAM_FLOAT 2 /* f64 */
#define PLUGIN_PARAM_BOOL 3  /* u8, 0 or 1 */
#define PLUGIN_PARAM_STR 4   /* u32 length, UTF-8 bytes (strings and enum choices) */

/* Longest description the host reads (including the NUL), and longest message or log line. */
#define PLUGIN_MAX_DESCRIBE_BYTES (64 * 1024)
#define PLUGIN_MAX_MESSAGE_BYTES 4096

/*
 * A frame in linear memory, 32 bytes. Input: every field set by the host. Output: the host sets
 * data and capacity and presets the rest to the input's; the plugin may change width, height,
 * stride and format, as long as stride * (height - 1) + width * bytes_per_pixel <= capacity.
 */
typedef struct plugin_frame_desc {
    uint32_t data;     /* offset of the first row in linear memory */
    uint32_t capacity; /* bytes available at data */
    uint32_t width;
    uint32_t height;
    uint32_t stride;   /* bytes from one row to the next, >= width * bytes per pixel */
    uint32_t format;   /* PLUGIN_FORMAT_* */
    int64_t timestamp_us;
} plugin_frame_desc;

_Static_assert(sizeof(plugin_frame_desc) == 32, "FrameDesc is 32 bytes");
_Static_assert(__builtin_offsetof(plugin_frame_desc, timestamp_us) == 24, "timestamp at offset 24");

#define PLUGIN_EXPORT(name) __attribute__((export_name(name)))

/* The host's log: one UTF-8 line of len bytes at ptr, at a PLUGIN_LOG_* level. */
__attribute__((import_module("plugin_host"), import_name("log"))) void plugin_host_log(int32_t level,
                                                                                       const char *ptr,
                                                                                       int32_t len);

/* The exports every plugin defines (signatures are part of the ABI). */
PLUGIN_EXPORT("plugin_abi_version") int32_t plugin_abi_version(void);
PLUGIN_EXPORT("plugin_describe") int32_t plugin_describe(void);
PLUGIN_EXPORT("plugin_alloc") int32_t plugin_alloc(int32_t size);
PLUGIN_EXPORT("plugin_init") int32_t plugin_init(int32_t params, int32_t len);
PLUGIN_EXPORT("plugin_process") int32_t plugin_process(int32_t input, int32_t output);
PLUGIN_EXPORT("plugin_last_error") int32_t plugin_last_error(void);

#endif
