// Debian's libjpeg62-turbo-dev. libjpeg's default error handler prints and calls exit(); ours
// formats the message and longjmps to the setjmp in vigil_jpeg_decode, so Swift frames are never
// jumped over and the process never exits. Warnings (corrupt data, "Premature end of JPEG file",
// which libjpeg would otherwise paper over with grey) are errors too: a truncated JPEG is refused.
#ifndef VIGIL_CJPEG_SHIM_H
#define VIGIL_CJPEG_SHIM_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct vigil_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void vigil_jpeg_error_exit(j_common_ptr cinfo) {
    struct vigil_jpeg_error *error = (struct vigil_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    longjmp(error->jump, 1);
}

static void vigil_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) {  // a warning: the data is corrupt or truncated
        struct vigil_jpeg_error *error = (struct vigil_jpeg_error *)cinfo->err;
        (*cinfo->err->format_message)(cinfo, error->message);
        longjmp(error->jump, 1);
    }
}

/// Decodes a JPEG held in memory to 8-bit pixels: 1 channel (grayscale JPEG) or 3 (RGB), rows
/// top to bottom, interleaved, with libjpeg-turbo's default (islow) IDCT and fancy upsampling.
/// Images wider or taller than `max_side` are refused. Returns 0 and a `malloc`ed buffer in
/// `*pixels` (the caller frees it), or -1 with libjpeg's message in `message`.
static inline int vigil_jpeg_decode(
    const unsigned char *data, size_t size, unsigned int max_side, unsigned char **pixels, int *width,
    int *height, int *channels, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    struct vigil_jpeg_error error;
    unsigned char *volatile buffer = NULL;
    *pixels = NULL;
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        snprintf(message, message_size, "not a JPEG file (bad signature)");
        return -1;
    }
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&error.base);
    error.base.error_exit = vigil_jpeg_error_exit;
    error.base.emit_message = vigil_jpeg_emit_message;
    error.message[0] = 0;
    if (setjmp(error.jump)) {
        snprintf(message, message_size, "%s", error.message);
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.image_width > max_side || cinfo.image_height > max_side) {
        snprintf(error.message, sizeof error.message, "image %ux%u is larger than %u pixels on a side",
                 cinfo.image_width, cinfo.image_height, max_side);
        longjmp(error.jump, 1);
    }
    cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int ch = cinfo.output_components;
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)ch;
    buffer = (unsigned char *)malloc(row_bytes * cinfo.output_height);
    if (buffer == NULL) {
        snprintf(error.message, sizeof error.message, "out of memory");
        longjmp(error.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = buffer + (size_t)cinfo.output_scanline * row_bytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    *channels = ch;
    jpeg_destroy_decompress(&cinfo);
    *pixels = buffer;
    return 0;
}

#endif
