/*
 * report_svg.c - the SVG charts of report.h: the line chart of a
 * per-epoch series, the confusion matrix heatmap and the prediction grid;
 * also the XML escaping that report.html shares (report_impl.h).
 *
 * Sizes follow matplotlib at 100 dpi: a point is 100/72 px, the default
 * font is 10 pt, lines are 1.5 pt wide, axes span [0.125, 0.9] x
 * [0.11, 0.88] of the figure.
 */
#include "report.h"
#include "report_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define PT (100.0 / 72.0)   /* pixels per point */
#define FONT_PX (10.0 * PT) /* matplotlib's default font size */
#define FONT_FAMILY "DejaVu Sans, Bitstream Vera Sans, Arial, Helvetica, sans-serif"
#define SVG_NS "http://www.w3.org/2000/svg"
#define XLINK_NS "http://www.w3.org/1999/xlink"

/* matplotlib's tab10 colour cycle. */
static const char *const TAB10[10] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"
};

/* ==== small helpers =================================================== */

/*
 * Writes s with the five XML special characters escaped, so it is safe in
 * text and in quoted attributes.  Control characters that XML 1.0 forbids
 * become '?'.
 */
void report__put_xml(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                fputc('?', out);
            else
                fputc(c, out);
        }
    }
}

/*
 * Advance widths of DejaVu Sans (matplotlib's font) for ' '..'~', in
 * thousandths of the font size: enough to size legends and margins.
 */
static const unsigned short GLYPH_WIDTH[95] = {
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361,
    318, 337, 636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337,
    838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295,
    295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989,
    685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615,
    352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521,
    392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838
};

/* Estimated width in pixels of s drawn at font size px. */
static double text_width(const char *s, double px)
{
    double w = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7F)
            w += GLYPH_WIDTH[c - 0x20];
        else if ((c & 0xC0) != 0x80)
            w += 650; /* a non-ASCII character: a typical width */
    }
    return w * px / 1000.0;
}

/* ---- axis ticks ---- */

typedef struct ticks {
    long first;      /* the first tick is first * step */
    int count;
    double step;
    int decimals;    /* for the labels */
} ticks;

/*
 * Round ticks inside [lo, hi]: the smallest step of the form
 * {1, 2, 2.5, 5} x 10^k (only {1, 2, 5} when integer) that gives at most
 * max_ticks ticks, as matplotlib's MaxNLocator chooses.
 */
static ticks nice_ticks(double lo, double hi, int max_ticks, int integer)
{
    static const double mult[4] = { 1, 2, 2.5, 5 };
    ticks t = { 0, 0, 1, 0 };
    double span = hi - lo;
    int k0;

    if (!(span > 0) || !isfinite(span))
        span = 1;
    k0 = (int)floor(log10(span / max_ticks)) - 1;
    if (integer && k0 < 0)
        k0 = 0;
    for (int k = k0; k < k0 + 5; k++) {
        for (int m = 0; m < 4; m++) {
            double step = mult[m] * pow(10.0, k);
            double a, b;
            if (integer && m == 2)
                continue;
            a = ceil(lo / step - 1e-9);
            b = floor(hi / step + 1e-9);
            if (b - a + 1 <= max_ticks) {
                t.first = (long)a;
                t.count = (int)(b - a + 1);
                t.step = step;
                t.decimals = -k + (m == 2);
                if (t.decimals < 0)
                    t.decimals = 0;
                return t;
            }
        }
    }
    return t;
}

static double tick_value(const ticks *t, int i)
{
    double v = (double)(t->first + i) * t->step;
    return fabs(v) < t->step * 1e-9 ? 0.0 : v; /* never "-0.00" */
}

/* ==== the line chart ================================================== */

const report_chart REPORT_CHART_VAL_ACCURACY = {
    "Comparison of Validation (Test) Accuracy", "Accuracy",
    REPORT_VAL_ACCURACY, 0, NULL
};

const report_chart REPORT_CHART_VAL_LOSS = {
    "Comparison of Validation Loss (Lower is Better)", "Loss",
    REPORT_VAL_LOSS, 1, " (Val Loss)"
};

static const float *run_series(const report_run *r, report_series s)
{
    switch (s) {
    case REPORT_LOSS: return r->loss;
    case REPORT_ACCURACY: return r->accuracy;
    case REPORT_VAL_LOSS: return r->val_loss;
    case REPORT_VAL_ACCURACY: return r->val_accuracy;
    }
    return NULL;
}

static const char *series_id(report_series s)
{
    switch (s) {
    case REPORT_LOSS: return "loss";
    case REPORT_ACCURACY: return "accuracy";
    case REPORT_VAL_LOSS: return "val_loss";
    case REPORT_VAL_ACCURACY: return "val_accuracy";
    }
    return "series";
}

typedef struct box {
    double x0, y0, x1, y1; /* left, top, right, bottom */
} box;

static int box_contains(const box *b, double x, double y)
{
    return x >= b->x0 && x <= b->x1 && y >= b->y0 && y <= b->y1;
}

/* Does the segment (ax, ay)-(bx, by) touch the box?  (Liang-Barsky) */
static int segment_hits_box(const box *b, double ax, double ay,
                            double bx, double by)
{
    double t0 = 0, t1 = 1, dx = bx - ax, dy = by - ay;
    double p[4] = { -dx, dx, -dy, dy };
    double q[4] = { ax - b->x0, b->x1 - ax, ay - b->y0, b->y1 - ay };
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
        } else {
            double t = q[i] / p[i];
            if (p[i] < 0) {
                if (t > t1)
                    return 0;
                if (t > t0)
                    t0 = t;
            } else {
                if (t < t0)
                    return 0;
                if (t < t1)
                    t1 = t;
            }
        }
    }
    return 1;
}

/* Maps data to pixels. */
typedef struct chart_map {
    box ax;
    double xlo, xhi, ylo, yhi;
} chart_map;

static double map_x(const chart_map *m, double x)
{
    return m->ax.x0 + (x - m->xlo) / (m->xhi - m->xlo) * (m->ax.x1 - m->ax.x0);
}

static double map_y(const chart_map *m, double y)
{
    return m->ax.y1 - (y - m->ylo) / (m->yhi - m->ylo) * (m->ax.y1 - m->ax.y0);
}

/*
 * How badly a legend at b hides the curves: data points inside it plus
 * curves crossing it, as matplotlib's loc='best' counts.
 */
static int legend_badness(const box *b, const chart_map *m,
                          const report_chart *c, const report_run *runs,
                          int count)
{
    int bad = 0;
    for (int i = 0; i < count; i++) {
        const float *v = run_series(&runs[i], c->series);
        int crosses = 0;
        if (v == NULL)
            continue;
        for (int e = 0; e < runs[i].epochs; e++) {
            double x, y;
            if (!isfinite(v[e]))
                continue;
            x = map_x(m, e + 1);
            y = map_y(m, v[e]);
            bad += box_contains(b, x, y);
            if (e > 0 && isfinite(v[e - 1]) &&
                segment_hits_box(b, map_x(m, e), map_y(m, v[e - 1]), x, y))
                crosses = 1;
        }
        bad += crosses;
    }
    return bad;
}

int report_svg_line_chart(FILE *out, const report_chart *c,
                          const report_run *runs, int count)
{
    const double W = 1200, H = 600, fs = FONT_PX;
    const double tick_len = 3.5 * PT, tick_pad = 3.5 * PT;
    const double line_w = 1.5 * PT, marker_r = 3.0 * PT;
    const char *id = series_id(c ? c->series : REPORT_LOSS);
    chart_map m;
    int emax = 0, entries = 0;
    double lo = INFINITY, hi = -INFINITY;
    double label_w = 0;
    ticks xt, yt;

    if (out == NULL || c == NULL || count < 0 || (count > 0 && runs == NULL)) {
        errno = EINVAL;
        return -1;
    }

    /* ---- data ranges ---- */
    for (int i = 0; i < count; i++) {
        const float *v = run_series(&runs[i], c->series);
        if (v == NULL || runs[i].epochs < 1)
            continue;
        entries++;
        if (runs[i].epochs > emax)
            emax = runs[i].epochs;
        for (int e = 0; e < runs[i].epochs; e++) {
            if (!isfinite(v[e]))
                continue;
            if (v[e] < lo)
                lo = v[e];
            if (v[e] > hi)
                hi = v[e];
        }
    }
    m.ax.x0 = 0.125 * W;
    m.ax.x1 = 0.9 * W;
    m.ax.y0 = (1 - 0.88) * H;
    m.ax.y1 = (1 - 0.11) * H;
    if (emax >= 2) {
        double pad = 0.05 * (emax - 1);
        m.xlo = 1 - pad;
        m.xhi = emax + pad;
    } else {
        m.xlo = 0.5;
        m.xhi = 1.5;
    }
    if (!(lo <= hi)) {
        m.ylo = 0;
        m.yhi = 1;
    } else if (hi - lo <= 1e-9 * fmax(1.0, fabs(hi))) {
        double pad = fmax(0.05 * fabs(hi), 0.05);
        m.ylo = lo - pad;
        m.yhi = hi + pad;
    } else {
        double pad = 0.05 * (hi - lo);
        m.ylo = lo - pad;
        m.yhi = hi + pad;
    }
    xt = nice_ticks(m.xlo, m.xhi, 10, 1);
    yt = nice_ticks(m.ylo, m.yhi, 8, 0);

    fprintf(out, "<svg xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"" FONT_FAMILY "\">\n", W, H, W, H);
    fputs("<title>", out);
    report__put_xml(out, c->title ? c->title : "");
    fputs("</title>\n", out);
    fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    fprintf(out, "<defs><clipPath id=\"%s-clip\"><rect x=\"%.2f\" y=\"%.2f\" "
            "width=\"%.2f\" height=\"%.2f\"/></clipPath></defs>\n", id,
            m.ax.x0, m.ax.y0, m.ax.x1 - m.ax.x0, m.ax.y1 - m.ax.y0);

    /* ---- grid (below the curves) ---- */
    fprintf(out, "<g stroke=\"#b0b0b0\" stroke-width=\"%.2f\" fill=\"none\">\n",
            0.8 * PT);
    for (int i = 0; i < xt.count; i++) {
        double x = map_x(&m, tick_value(&xt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x, m.ax.y0, x, m.ax.y1);
    }
    for (int i = 0; i < yt.count; i++) {
        double y = map_y(&m, tick_value(&yt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                m.ax.x0, y, m.ax.x1, y);
    }
    fputs("</g>\n", out);

    /* ---- curves and markers ---- */
    fprintf(out, "<g clip-path=\"url(#%s-clip)\">\n", id);
    for (int i = 0, k = 0; i < count; i++) {
        const float *v = run_series(&runs[i], c->series);
        const char *color = TAB10[k % 10];
        int pen_down = 0, started = 0;
        if (v == NULL || runs[i].epochs < 1)
            continue;
        k++;
        for (int e = 0; e < runs[i].epochs; e++) {
            if (!isfinite(v[e])) {
                pen_down = 0;
                continue;
            }
            if (!started) {
                fprintf(out, "<path fill=\"none\" stroke=\"%s\" "
                        "stroke-width=\"%.2f\" stroke-linejoin=\"round\"%s d=\"",
                        color, line_w, c->dashed
                        ? " stroke-linecap=\"butt\" stroke-dasharray=\"7.71 3.33\""
                        : " stroke-linecap=\"square\"");
                started = 1;
            }
            fprintf(out, "%s%.2f %.2f ", pen_down ? "L" : "M",
                    map_x(&m, e + 1), map_y(&m, v[e]));
            pen_down = 1;
        }
        if (started)
            fputs("\"/>\n", out);
        fprintf(out, "<g fill=\"%s\">", color);
        for (int e = 0; e < runs[i].epochs; e++)
            if (isfinite(v[e]))
                fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"/>",
                        map_x(&m, e + 1), map_y(&m, v[e]), marker_r);
        fputs("</g>\n", out);
    }
    fputs("</g>\n", out);

    /* ---- frame, ticks and tick labels ---- */
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
            "fill=\"none\" stroke=\"#000000\" stroke-width=\"%.2f\"/>\n",
            m.ax.x0, m.ax.y0, m.ax.x1 - m.ax.x0, m.ax.y1 - m.ax.y0, 0.8 * PT);
    fprintf(out, "<g stroke=\"#000000\" stroke-width=\"%.2f\">\n", 0.8 * PT);
    for (int i = 0; i < xt.count; i++) {
        double x = map_x(&m, tick_value(&xt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x, m.ax.y1, x, m.ax.y1 + tick_len);
    }
    for (int i = 0; i < yt.count; i++) {
        double y = map_y(&m, tick_value(&yt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                m.ax.x0 - tick_len, y, m.ax.x0, y);
    }
    fputs("</g>\n", out);
    fprintf(out, "<g font-size=\"%.2f\" fill=\"#000000\">\n", fs);
    for (int i = 0; i < xt.count; i++)
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.0f</text>\n",
                map_x(&m, tick_value(&xt, i)),
                m.ax.y1 + tick_len + tick_pad + 0.76 * fs, tick_value(&xt, i));
    for (int i = 0; i < yt.count; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.*f", yt.decimals, tick_value(&yt, i));
        if (text_width(buf, fs) > label_w)
            label_w = text_width(buf, fs);
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                m.ax.x0 - tick_len - tick_pad,
                map_y(&m, tick_value(&yt, i)) + 0.36 * fs, buf);
    }

    /* ---- axis labels and title ---- */
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">Epoch</text>\n",
            (m.ax.x0 + m.ax.x1) / 2,
            m.ax.y1 + tick_len + tick_pad + fs + 4 * PT + 0.76 * fs);
    {
        double x = m.ax.x0 - tick_len - tick_pad - label_w - 4 * PT - 0.24 * fs;
        double y = (m.ax.y0 + m.ax.y1) / 2;
        fprintf(out, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" "
                "text-anchor=\"middle\">", x, y);
        report__put_xml(out, c->ylabel ? c->ylabel : "");
        fputs("</text>\n", out);
    }
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
            "font-size=\"%.2f\">", (m.ax.x0 + m.ax.x1) / 2, m.ax.y0 - 6 * PT,
            12 * PT);
    report__put_xml(out, c->title ? c->title : "");
    fputs("</text>\n</g>\n", out);

    /* ---- legend, where it hides the least ---- */
    if (entries > 0) {
        const char *suffix = c->legend_suffix ? c->legend_suffix : "";
        double text_w = 0, row = fs * 1.2, w, h, cx, cy, pad = 0.5 * fs;
        box best = { 0, 0, 0, 0 };
        int best_bad = -1;
        for (int i = 0; i < count; i++) {
            double tw;
            if (run_series(&runs[i], c->series) == NULL || runs[i].epochs < 1)
                continue;
            tw = text_width(runs[i].name ? runs[i].name : "", fs) +
                 text_width(suffix, fs);
            if (tw > text_w)
                text_w = tw;
        }
        w = 0.4 * fs + 2.0 * fs + 0.8 * fs + text_w + 0.4 * fs;
        h = 0.8 * fs + entries * row + (entries - 1) * 0.5 * fs;
        cx = (m.ax.x0 + m.ax.x1 - w) / 2;
        cy = (m.ax.y0 + m.ax.y1 - h) / 2;
        /* matplotlib's order: upper right, upper left, lower left, lower
         * right, right, center left, lower center, upper center, center */
        {
            double xl = m.ax.x0 + pad, xr = m.ax.x1 - pad - w;
            double yt_ = m.ax.y0 + pad, yb = m.ax.y1 - pad - h;
            double xs[9] = { xr, xl, xl, xr, xr, xl, cx, cx, cx };
            double ys[9] = { yt_, yt_, yb, yb, cy, cy, yb, yt_, cy };
            for (int i = 0; i < 9; i++) {
                box b = { xs[i], ys[i], xs[i] + w, ys[i] + h };
                int bad = legend_badness(&b, &m, c, runs, count);
                if (best_bad < 0 || bad < best_bad) {
                    best_bad = bad;
                    best = b;
                }
            }
        }
        fprintf(out, "<g font-size=\"%.2f\">\n", fs);
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "rx=\"%.2f\" fill=\"#ffffff\" fill-opacity=\"0.8\" "
                "stroke=\"#cccccc\" stroke-width=\"%.2f\"/>\n",
                best.x0, best.y0, w, h, 0.2 * fs, 1.0 * PT);
        for (int i = 0, k = 0; i < count; i++) {
            double y, x;
            const char *color = TAB10[k % 10];
            if (run_series(&runs[i], c->series) == NULL || runs[i].epochs < 1)
                continue;
            y = best.y0 + 0.4 * fs + k * (row + 0.5 * fs) + row / 2;
            x = best.x0 + 0.4 * fs;
            k++;
            fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                    "stroke=\"%s\" stroke-width=\"%.2f\"%s/>",
                    x, y, x + 2 * fs, y, color, line_w,
                    c->dashed ? " stroke-dasharray=\"7.71 3.33\"" : "");
            fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\"/>",
                    x + fs, y, marker_r, color);
            fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">", x + 2.8 * fs, y + 0.36 * fs);
            report__put_xml(out, runs[i].name ? runs[i].name : "");
            report__put_xml(out, suffix);
            fputs("</text>\n", out);
        }
        fputs("</g>\n", out);
    }
    fputs("</svg>\n", out);
    return 0;
}

/* ==== the confusion matrix heatmap ==================================== */

/* matplotlib's 'Blues' (ColorBrewer), 9 evenly spaced stops. */
static const double BLUES[9][3] = {
    { 0.96862745098039216, 0.98431372549019602, 1.0 },
    { 0.87058823529411766, 0.92156862745098034, 0.96862745098039216 },
    { 0.77647058823529413, 0.85882352941176465, 0.93725490196078431 },
    { 0.61960784313725492, 0.792156862745098, 0.88235294117647056 },
    { 0.41960784313725491, 0.68235294117647061, 0.83921568627450982 },
    { 0.25882352941176473, 0.5725490196078431, 0.77647058823529413 },
    { 0.12941176470588237, 0.44313725490196076, 0.70980392156862748 },
    { 0.03137254901960784, 0.31764705882352939, 0.61176470588235299 },
    { 0.03137254901960784, 0.18823529411764706, 0.41960784313725491 }
};

/* The colour of t in [0, 1], through the 256-entry lookup table as
 * matplotlib's Colormap.__call__ picks it. */
static void blues(double t, double rgb[3])
{
    int idx;
    double x, f;
    int s;
    if (!(t >= 0))
        t = 0;
    idx = t >= 1 ? 255 : (int)(t * 256);
    x = idx / 255.0 * 8;
    s = (int)x;
    if (s >= 8)
        s = 7;
    f = x - s;
    for (int i = 0; i < 3; i++)
        rgb[i] = BLUES[s][i] + f * (BLUES[s + 1][i] - BLUES[s][i]);
}

/* seaborn's utils.relative_luminance. */
static double luminance(const double rgb[3])
{
    static const double k[3] = { 0.2126, 0.7152, 0.0722 };
    double lum = 0;
    for (int i = 0; i < 3; i++) {
        double c = rgb[i] <= 0.03928 ? rgb[i] / 12.92
                                     : pow((rgb[i] + 0.055) / 1.055, 2.4);
        lum += k[i] * c;
    }
    return lum;
}

static void put_rgb(FILE *out, const double rgb[3])
{
    fprintf(out, "#%02x%02x%02x", (int)lround(rgb[0] * 255),
            (int)lround(rgb[1] * 255), (int)lround(rgb[2] * 255));
}

int report_svg_confusion(FILE *out, const long *matrix, int num_classes,
                         const char *const *class_names)
{
    const double W = 1000, H = 800, fs = FONT_PX;
    const double tick_len = 3.5 * PT, tick_pad = 3.5 * PT;
    const double cos45 = 0.70710678118654752;
    size_t k = (size_t)num_classes;
    double name_w = 0, x0, x1, y0, y1, cw, ch, afs;
    double cb_x0, cb_w = 30, vmin, vmax, max_digits;
    long lmin, lmax;
    ticks ct;

    if (out == NULL || matrix == NULL || class_names == NULL || num_classes < 1) {
        errno = EINVAL;
        return -1;
    }
    lmin = lmax = matrix[0];
    for (size_t i = 0; i < k * k; i++) {
        if (matrix[i] < lmin)
            lmin = matrix[i];
        if (matrix[i] > lmax)
            lmax = matrix[i];
    }
    vmin = (double)lmin;
    vmax = (double)lmax;
    for (size_t c = 0; c < k; c++)
        if (text_width(class_names[c], fs) > name_w)
            name_w = text_width(class_names[c], fs);
    {
        char buf[32];
        max_digits = snprintf(buf, sizeof buf, "%ld", lmax);
        if (snprintf(buf, sizeof buf, "%ld", lmin) > max_digits)
            max_digits = snprintf(buf, sizeof buf, "%ld", lmin);
    }

    /* Layout: room for the names on the left and, rotated 45 degrees,
     * below; the colour bar on the right, as seaborn steals it. */
    x0 = fmax(0.125 * W, 20 + 1.2 * fs + 8 + name_w + tick_len + tick_pad);
    cb_x0 = W - 0.1 * W - cb_w;
    x1 = cb_x0 - 0.05 * (cb_x0 - x0);
    y0 = 0.12 * H;
    y1 = H - fmax(0.11 * H, tick_len + tick_pad + (name_w + fs) * cos45 +
                              6 * PT + 1.2 * fs + 16);
    cw = (x1 - x0) / (double)k;
    ch = (y1 - y0) / (double)k;
    afs = fmin(fs, fmin(ch * 0.45, cw / (max_digits * 0.64 + 0.4)));

    fprintf(out, "<svg xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"" FONT_FAMILY "\">\n", W, H, W, H);
    fputs("<title>Confusion Matrix: Where is the model making mistakes?</title>\n", out);
    fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);

    /* ---- cells ---- */
    fputs("<g shape-rendering=\"crispEdges\">\n", out);
    for (size_t r = 0; r < k; r++)
        for (size_t c = 0; c < k; c++) {
            double rgb[3];
            double t = vmax > vmin ? ((double)matrix[r * k + c] - vmin) / (vmax - vmin) : 0;
            blues(t, rgb);
            fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"",
                    x0 + (double)c * cw, y0 + (double)r * ch, cw + 0.5, ch + 0.5);
            put_rgb(out, rgb);
            fputs("\"/>\n", out);
        }
    fputs("</g>\n", out);

    /* ---- counts: white on dark cells, dark grey on light ones ---- */
    fprintf(out, "<g font-size=\"%.2f\" text-anchor=\"middle\">\n", afs);
    for (size_t r = 0; r < k; r++)
        for (size_t c = 0; c < k; c++) {
            double rgb[3];
            double t = vmax > vmin ? ((double)matrix[r * k + c] - vmin) / (vmax - vmin) : 0;
            blues(t, rgb);
            fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" fill=\"%s\">%ld</text>\n",
                    x0 + ((double)c + 0.5) * cw, y0 + ((double)r + 0.5) * ch + 0.36 * afs,
                    luminance(rgb) > 0.408 ? "#262626" : "#ffffff", matrix[r * k + c]);
        }
    fputs("</g>\n", out);

    /* ---- ticks and class names ---- */
    fprintf(out, "<g stroke=\"#000000\" stroke-width=\"%.2f\">\n", 0.8 * PT);
    for (size_t i = 0; i < k; i++) {
        double x = x0 + ((double)i + 0.5) * cw, y = y0 + ((double)i + 0.5) * ch;
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>",
                x, y1, x, y1 + tick_len);
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x0 - tick_len, y, x0, y);
    }
    fputs("</g>\n", out);
    fprintf(out, "<g font-size=\"%.2f\" fill=\"#000000\">\n", fs);
    for (size_t i = 0; i < k; i++) {
        double x = x0 + ((double)i + 0.5) * cw, y = y0 + ((double)i + 0.5) * ch;
        /* rotated 45 degrees, its end at the tick */
        fprintf(out, "<text transform=\"translate(%.2f %.2f) rotate(-45)\" "
                "text-anchor=\"end\">", x + 0.5 * fs * cos45,
                y1 + tick_len + tick_pad + 0.5 * fs * cos45);
        report__put_xml(out, class_names[i]);
        fputs("</text>\n", out);
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">",
                x0 - tick_len - tick_pad, y + 0.36 * fs);
        report__put_xml(out, class_names[i]);
        fputs("</text>\n", out);
    }

    /* ---- axis labels and title ---- */
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">Predicted Label</text>\n",
            (x0 + x1) / 2, y1 + tick_len + tick_pad + (name_w + fs) * cos45 + 6 * PT + 0.76 * fs);
    fprintf(out, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" "
            "text-anchor=\"middle\">Actual Label</text>\n",
            x0 - tick_len - tick_pad - name_w - 6 * PT - 0.24 * fs, (y0 + y1) / 2);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"%.2f\">"
            "Confusion Matrix: Where is the model making mistakes?</text>\n",
            (x0 + x1) / 2, y0 - 6 * PT, 12 * PT);
    fputs("</g>\n", out);

    /* ---- colour bar ---- */
    fputs("<defs><linearGradient id=\"confusion-blues\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">", out);
    for (int i = 0; i < 9; i++) {
        fprintf(out, "<stop offset=\"%.4f\" stop-color=\"", i / 8.0);
        put_rgb(out, BLUES[i]);
        fputs("\"/>", out);
    }
    fputs("</linearGradient></defs>\n", out);
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
            "fill=\"url(#confusion-blues)\"/>\n", cb_x0, y0, cb_w, y1 - y0);
    {
        double lo = vmin, hi = vmax > vmin ? vmax : vmin + 1;
        ct = nice_ticks(lo, hi, 8, hi - lo >= 4);
        fprintf(out, "<g font-size=\"%.2f\" fill=\"#000000\" stroke-width=\"%.2f\">\n",
                fs, 0.8 * PT);
        for (int i = 0; i < ct.count; i++) {
            double v = tick_value(&ct, i);
            double y = y1 - (v - lo) / (hi - lo) * (y1 - y0);
            fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                    "stroke=\"#000000\"/>", cb_x0 + cb_w, y, cb_x0 + cb_w + tick_len, y);
            fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n",
                    cb_x0 + cb_w + tick_len + tick_pad, y + 0.36 * fs,
                    ct.decimals, v);
        }
        fputs("</g>\n", out);
    }
    fputs("</svg>\n", out);
    return 0;
}

/* ==== the prediction grid ============================================= */

/* One image as a base64 PNG drawn with the 'binary' colormap. */
static char *image_base64(const float *values, int width, int height)
{
    size_t n = (size_t)width * (size_t)height, png_size;
    uint8_t *gray = malloc(n);
    unsigned char *png = NULL;
    char *b64 = NULL;

    if (gray == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    report_gray_binary(gray, values, n);
    if (report_png_gray(&png, &png_size, gray, width, height) == 0)
        b64 = report_base64(png, png_size);
    free(gray);
    free(png);
    return b64;
}

int report_svg_predictions(FILE *out, const report_images *im,
                           const char *const *class_names, int columns)
{
    const double cell_w = 300, cell_h = 1000.0 / 3, fs = FONT_PX;
    const double line = 1.25 * fs;
    int rows, n;
    double W, H, side;

    if (out == NULL || im == NULL || class_names == NULL || columns < 1 ||
        im->count < 0 || (im->count > 0 &&
        (im->pixels == NULL || im->true_class == NULL || im->pred_class == NULL ||
         im->width < 1 || im->height < 1))) {
        errno = EINVAL;
        return -1;
    }
    n = im->count;
    rows = n > 0 ? (n + columns - 1) / columns : 1;
    if (columns > n && n > 0)
        columns = n;
    W = cell_w * columns;
    H = cell_h * rows;
    side = fmin(cell_w - 40, cell_h - 2 * line - 40);

    fprintf(out, "<svg xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"" FONT_FAMILY "\" font-size=\"%.2f\">\n",
            W, H, W, H, fs);
    fputs("<title>Predictions on the first test images</title>\n", out);
    fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    if (n == 0)
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">"
                "No images</text>\n", W / 2, H / 2);
    for (int i = 0; i < n; i++) {
        size_t px = (size_t)im->width * (size_t)im->height;
        double cx = (i % columns + 0.5) * cell_w;
        double top = (i / columns) * cell_h + 2 * line + 18;
        double x = cx - side / 2;
        double img_h = side * im->height / im->width;
        int t = im->true_class[i], p = im->pred_class[i];
        const char *color = t == p ? "#008000" : "#ff0000";
        char *b64 = image_base64(im->pixels + (size_t)i * px, im->width, im->height);

        if (b64 == NULL)
            return -1;
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" fill=\"%s\">"
                "<tspan x=\"%.2f\" y=\"%.2f\">Pred: ", cx, top - line - 8, color,
                cx, top - line - 8);
        report__put_xml(out, p >= 0 ? class_names[p] : "?");
        fprintf(out, "</tspan><tspan x=\"%.2f\" y=\"%.2f\">True: ", cx, top - 8);
        report__put_xml(out, t >= 0 ? class_names[t] : "?");
        fputs("</tspan></text>\n", out);
        fprintf(out, "<image x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "preserveAspectRatio=\"none\" image-rendering=\"optimizeSpeed\" "
                "style=\"image-rendering:pixelated\" "
                "href=\"data:image/png;base64,%s\" "
                "xlink:href=\"data:image/png;base64,%s\"/>\n",
                x, top, side, img_h, b64, b64);
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "fill=\"none\" stroke=\"#000000\" stroke-width=\"%.2f\"/>\n",
                x, top, side, img_h, 0.8 * PT);
        free(b64);
    }
    fputs("</svg>\n", out);
    return 0;
}
