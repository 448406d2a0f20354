// shmkit bench: parsing the benchmark programs' --tsv rows; the merged
// table, the JSON document and the SVG chart (see bench_report.hpp).
#include "bench_report.hpp"
#include "target.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace shmkit_tool {

namespace {

std::vector<std::string> split_tabs(const std::string& line)
{
    std::vector<std::string> f;
    std::size_t at = 0;
    for (;;) {
        const std::size_t tab = line.find('\t', at);
        f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
        if (tab == std::string::npos) return f;
        at = tab + 1;
    }
}

bool to_double(const std::string& s, double& d)
{
    if (s.empty()) return false;
    char* end = nullptr;
    d = std::strtod(s.c_str(), &end);
    return end && *end == '\0' && std::isfinite(d);
}

/// "123.4M/s", as the benchmark programs print it.
std::string rate(double ops)
{
    const char* unit = "";
    double v = ops;
    if (ops >= 1e9) v = ops / 1e9, unit = "G";
    else if (ops >= 1e6) v = ops / 1e6, unit = "M";
    else if (ops >= 1e3) v = ops / 1e3, unit = "k";
    std::ostringstream s;
    s << std::fixed << std::setprecision(v >= 100 ? 0 : 1) << v << unit << "/s";
    return s.str();
}

std::string ratio_text(double r)
{
    if (!(r > 0)) return "-";
    std::ostringstream s;
    s << std::fixed << std::setprecision(2) << r << "x";
    return s.str();
}

std::string number(double d, int precision)
{
    std::ostringstream s;
    s << std::fixed << std::setprecision(precision) << d;
    return s.str();
}

/// Text for XML character data and attribute values: & < > " escaped,
/// control characters dropped (the input is the benchmarks' ASCII names).
std::string xml(const std::string& s)
{
    std::string r;
    for (const char c : s) {
        switch (c) {
        case '&': r += "&amp;"; break;
        case '<': r += "&lt;"; break;
        case '>': r += "&gt;"; break;
        case '"': r += "&quot;"; break;
        default:
            if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) r += c;
        }
    }
    return r;
}

} // namespace

std::vector<bench_row> parse_bench_tsv(const std::string& text)
{
    std::vector<bench_row> rows;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const std::vector<std::string> f = split_tabs(line);
        if (f.size() < 8) continue;
        bench_row r;
        r.name = f[0];
        r.baseline = f[2];
        if (!to_double(f[1], r.shmkit) || !to_double(f[3], r.base)) continue;
        if (!to_double(f[4], r.ratio)) r.ratio = 0;
        r.target = f[5];
        r.met = f[6];
        r.flag = f[7];
        rows.push_back(std::move(r));
    }
    return rows;
}

void print_bench_table(std::ostream& out, const std::vector<bench_group>& groups)
{
    std::size_t gw = 5, nw = 9, bw = 8;
    for (const bench_group& g : groups) {
        gw = std::max(gw, g.name.size());
        for (const bench_row& r : g.rows) {
            nw = std::max(nw, r.name.size());
            bw = std::max(bw, r.baseline.size());
        }
    }
    auto cell = [&](const std::string& s, std::size_t w, bool right = false) {
        out << (right ? std::right : std::left) << std::setw(static_cast<int>(w)) << s << "  ";
    };
    cell("BENCH", gw);
    cell("OPERATION", nw);
    cell("SHMKIT", 10, true);
    cell("BASELINE", bw);
    cell("BASELINE", 10, true);
    cell("RATIO", 8, true);
    out << "TARGET\n";
    for (const bench_group& g : groups) {
        if (g.status != "ok") {
            cell(g.name, gw);
            out << g.status << " (" << g.reason << ")\n";
        }
        for (const bench_row& r : g.rows) {
            cell(g.name, gw);
            cell(r.name, nw);
            cell(rate(r.shmkit), 10, true);
            cell(r.baseline, bw);
            cell(r.base > 0 ? rate(r.base) : "-", 10, true);
            cell(ratio_text(r.ratio), 8, true);
            std::string t = r.target.empty() ? "-" : r.target + ": " + r.met;
            if (!r.flag.empty()) t += "  " + r.flag;
            out << t << "\n";
        }
    }
    out.flush();
}

void write_bench_json(std::ostream& out, const std::vector<bench_group>& groups, bool quick, unsigned procs)
{
    auto q = [](const std::string& s) { return json_writer::quote(s); };
    out << "{\"quick\":" << (quick ? "true" : "false") << ",\"procs\":";
    if (procs) out << procs;
    else out << "null";
    out << ",\"benchmarks\":[";
    bool first_g = true;
    for (const bench_group& g : groups) {
        out << (first_g ? "" : ",") << "{\"name\":" << q(g.name) << ",\"program\":" << q(g.program)
            << ",\"status\":" << q(g.status) << ",\"reason\":" << q(g.reason) << ",\"seconds\":" << number(g.seconds, 3)
            << ",\"exit_status\":" << g.exit_status << ",\"rows\":[";
        first_g = false;
        bool first_r = true;
        for (const bench_row& r : g.rows) {
            out << (first_r ? "" : ",") << "{\"operation\":" << q(r.name) << ",\"shmkit_ops\":" << number(r.shmkit, 3)
                << ",\"baseline\":" << q(r.baseline) << ",\"baseline_ops\":" << number(r.base, 3) << ",\"ratio\":";
            if (r.ratio > 0) out << number(r.ratio, 6);
            else out << "null";
            out << ",\"target\":" << q(r.target) << ",\"met\":";
            if (r.met.empty()) out << "null";
            else out << (r.met == "met" ? "true" : "false");
            out << ",\"flag\":" << q(r.flag) << "}";
            first_r = false;
        }
        out << "]}";
    }
    out << "]}\n";
}

void write_bench_svg(std::ostream& out, const std::vector<bench_group>& groups)
{
    // Layout: labels on the left, a log-scale axis of ratios on the right.
    const double label_w = 620, plot_w = 420, margin = 16, row_h = 20, head_h = 24;
    const double plot_x = margin + label_w, width = plot_x + plot_w + 70;
    double lo = 0.1, hi = 10;
    for (const bench_group& g : groups)
        for (const bench_row& r : g.rows)
            if (r.ratio > 0) {
                lo = std::min(lo, std::pow(10.0, std::floor(std::log10(r.ratio))));
                hi = std::max(hi, std::pow(10.0, std::ceil(std::log10(r.ratio))));
            }
    const double llo = std::log10(lo), lhi = std::log10(hi);
    auto x_of = [&](double ratio) { return plot_x + (std::log10(ratio) - llo) / (lhi - llo) * plot_w; };
    double rows_h = 0;
    for (const bench_group& g : groups) rows_h += head_h + row_h * static_cast<double>(g.rows.size());
    const double top = 64, height = top + rows_h + 40;

    std::ostringstream body;
    body << std::fixed << std::setprecision(1);
    double y = top;
    for (const bench_group& g : groups) {
        body << "<text x=\"" << margin << "\" y=\"" << y + 16 << "\" font-weight=\"bold\">" << xml(g.name);
        if (g.status != "ok") body << ": " << xml(g.status) << " (" << xml(g.reason) << ")";
        body << "</text>\n";
        y += head_h;
        for (const bench_row& r : g.rows) {
            const std::string label = r.name + " vs " + r.baseline;
            body << "<text x=\"" << plot_x - 8 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">" << xml(label)
                 << "</text>\n";
            const double x1 = x_of(1.0), x2 = r.ratio > 0 ? x_of(r.ratio) : x1;
            const char* fill = r.met == "met" ? "#2e7d32" : r.met == "not met" ? "#c62828" : "#4f7cc4";
            body << "<rect x=\"" << std::min(x1, x2) << "\" y=\"" << y + 3 << "\" width=\"" << std::abs(x2 - x1)
                 << "\" height=\"" << row_h - 6 << "\" fill=\"" << fill << "\"><title>" << xml(label) << ": "
                 << ratio_text(r.ratio) << (r.target.empty() ? "" : " (" + xml(r.target) + ": " + xml(r.met) + ")")
                 << "</title></rect>\n";
            body << "<text x=\"" << std::max(x1, x2) + 4 << "\" y=\"" << y + 14 << "\">" << ratio_text(r.ratio)
                 << "</text>\n";
            y += row_h;
        }
    }

    out << std::fixed << std::setprecision(1);
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << height
        << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<title>shmkit bench: shmkit ops/s divided by each baseline's</title>\n"
        << "<text x=\"" << margin << "\" y=\"22\" font-size=\"16\" font-weight=\"bold\">shmkit bench: ratio of shmkit's "
           "ops/s to each baseline's (log scale; right of 1.0x: shmkit faster)</text>\n"
        << "<text x=\"" << margin << "\" y=\"42\">bars: green target met, red target not met, blue no target</text>\n";
    // Grid: a line per power of ten, the 1.0x line darker.
    for (double l = llo; l <= lhi + 1e-9; l += 1) {
        const double v = std::pow(10.0, std::round(l)), x = x_of(v);
        const bool one = std::abs(v - 1.0) < 1e-9;
        out << "<line x1=\"" << x << "\" y1=\"" << top - 4 << "\" x2=\"" << x << "\" y2=\"" << top + rows_h
            << "\" stroke=\"" << (one ? "#000000" : "#cccccc") << "\" stroke-width=\"" << (one ? 1.5 : 1) << "\"/>\n";
        std::ostringstream t;
        t << (v < 1 ? std::setprecision(static_cast<int>(std::round(-l))) : std::setprecision(0)) << std::fixed << v;
        out << "<text x=\"" << x << "\" y=\"" << top + rows_h + 16 << "\" text-anchor=\"middle\">" << t.str()
            << "x</text>\n";
    }
    out << body.str() << "</svg>\n";
}

} // namespace shmkit_tool
