// Debian's libpng-dev (libpng 1.6). libpng reports errors by longjmp to the caller's setjmp;
// Swift frames must never be jumped over, so the whole decode runs in this C function: every
// libpng error unwinds to the setjmp below, frees what was allocated, and returns -1 with the
// message. Swift only sees the return code.
#ifndef VIGIL_CPNG_SHIM_H
#define VIGIL_CPNG_SHIM_H

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t position;
    char *message;
    size_t message_size;
} vigil_png_source;

static void vigil_png_read(png_structp png, png_bytep out, png_size_t count) {
    vigil_png_source *source = (vigil_png_source *)png_get_io_ptr(png);
    if (count > source->size - source->position) {
        png_error(png, "unexpected end of data (truncated PNG)");
    }
    memcpy(out, source->data + source->position, count);
    source->position += count;
}

static void vigil_png_error(png_structp png, png_const_charp message) {
    vigil_png_source *source = (vigil_png_source *)png_get_error_ptr(png);
    if (source != NULL && source->message != NULL) {
        snprintf(source->message, source->message_size, "%s", message);
    }
    png_longjmp(png, 1);
}

static void vigil_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/// Decodes a PNG held in memory to 8-bit pixels: 1 channel (grayscale) or 3 (RGB), rows top to
/// bottom, interleaved. 16-bit samples keep their high byte, palettes expand to RGB, low bit
/// depths expand to 8 bits, an alpha channel or tRNS transparency is dropped (`*had_alpha`).
/// Images wider or taller than `max_side` are refused. Returns 0 and a `malloc`ed buffer in
/// `*pixels` (the caller frees it), or -1 with a message in `message`.
static inline int vigil_png_decode(
    const unsigned char *data, size_t size, unsigned int max_side, unsigned char **pixels, int *width,
    int *height, int *channels, int *had_alpha, char *message, size_t message_size) {
    vigil_png_source source = {data, size, 0, message, message_size};
    png_structp png = NULL;
    png_infop info = NULL;
    unsigned char *volatile buffer = NULL;
    png_bytep *volatile rows = NULL;
    *pixels = NULL;
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(message, message_size, "not a PNG file (bad signature)");
        return -1;
    }
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, vigil_png_error, vigil_png_warning);
    if (png == NULL) {
        snprintf(message, message_size, "libpng could not allocate a decoder");
        return -1;
    }
    info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(message, message_size, "libpng could not allocate a decoder");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(buffer);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &source, vigil_png_read);
    png_set_user_limits(png, max_side, max_side);
    png_read_info(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    *had_alpha = (color & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    png_uint_32 w = png_get_image_width(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    int ch = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if ((ch != 1 && ch != 3) || row_bytes != (size_t)w * (size_t)ch) {
        png_error(png, "unsupported PNG layout after conversion to 8-bit gray or RGB");
    }
    buffer = (unsigned char *)malloc(row_bytes * h);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (buffer == NULL || rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = buffer + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    *pixels = buffer;
    *width = (int)w;
    *height = (int)h;
    *channels = ch;
    return 0;
}

/// Writes 8-bit RGB pixels (`width * height * 3`, rows top to bottom) to a PNG file with
/// libpng's simplified API, which handles its errors internally (no longjmp reaches the caller).
/// Returns 0, or -1 with the message in `message`.
static inline int vigil_png_write_rgb(
    const char *path, const unsigned char *rgb, unsigned width, unsigned height, char *message, size_t message_size) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&image, path, 0, rgb, 0, NULL);
    if (!ok) {
        snprintf(message, message_size, "%s", image.message);
        png_image_free(&image);
        return -1;
    }
    png_image_free(&image);
    return 0;
}

#endif
