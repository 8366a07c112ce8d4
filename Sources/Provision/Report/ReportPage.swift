import App
import Foundation
import Verification

/// Renders a `ReportDocument` as one self-contained HTML page: inline CSS and SVG, no script, no font,
/// no request to anything; readable at phone width and printable.
enum ReportPage {
    /// Forbids every request (scripts, images, fonts, frames, fetches) and allows only the page's own
    /// inline style: the page shows exactly what it carries.
    static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'"

    /// The whole page.
    static func html(_ report: ReportDocument) -> String {
        let t = report.timeline
        var body = """
            <header><h1>\(escape(report.plan)) · run \(t.run) · \(escape(t.command))</h1>
            <p class="meta">\(escape(report.status)) · started \(iso(t.started)) · \(seconds(t.seconds)) · \(t.bars.count) steps</p></header>
            <section><h2>Steps</h2>\(timelineSVG(t))
            <p class="legend"><span class="k ok"></span>applied <span class="k adopted"></span>adopted or unchanged <span class="k failed"></span>failed \
            <span class="k retried"></span>retried (↻ attempts) <span class="k other"></span>skipped or cancelled <span class="k crit"></span>critical path</p>
            <p><b>Critical path:</b> \(t.criticalPath.map(escape).joined(separator: " → "))</p>
            """
        let troubled = t.bars.filter { $0.retries > 0 || $0.outcome == "failed" }
        if !troubled.isEmpty {
            body += "<h3>Failures and retries</h3><ul class=\"trouble\">"
            for bar in troubled {
                let what = bar.outcome == "failed" ? "failed after \(bar.attempts) attempt(s)" : "\(bar.outcome) after \(bar.retries) retr\(bar.retries == 1 ? "y" : "ies")"
                body += "<li class=\"\(bar.outcome == "failed" ? "failed" : "retried")\"><b>\(escape(bar.step))</b> \(what)"
                    + (bar.message.map { ": " + escape(String($0.prefix(1200))).replacingOccurrences(of: "\n", with: "<br>") } ?? "") + "</li>"
            }
            body += "</ul>"
        }
        body += "</section>"
        if !report.verify.isEmpty {
            body += "<section><h2>Verify</h2><table><tr><th>check</th><th>expected</th><th>seen</th><th>ok</th></tr>"
            for check in report.verify {
                body += "<tr class=\"\(check.ok ? "pass" : "fail")\"><td>\(escape(check.name))</td><td>\(escape(check.expected))</td>"
                    + "<td>\(escape(check.seen))</td><td>\(check.ok ? "✔" : "✘")</td></tr>"
            }
            body += "</table></section>"
        }
        if !report.objectives.isEmpty {
            let range = report.measured.map { " (\(clock($0[0]))–\(clock($0[1])) UTC, \(seconds($0[1].timeIntervalSince($0[0]))))" } ?? ""
            body += "<section><h2>SLOs over the run\(range)</h2><p class=\"meta\">Each SLI measured over this time range; "
                + "error budget left = 1 − (1 − measured) / (1 − objective). A short range holds few batches: records in flight at its end weigh heavily.</p><table><tr><th>SLO</th><th>objective</th><th>measured</th><th>error budget left</th></tr>"
            for o in report.objectives {
                body += "<tr data-slo=\"\(escape(o.name))\"><td>\(escape(o.name))</td><td>\(o.objective.map(percent) ?? "no data")</td>"
                    + "<td>\(o.measured.map(percent) ?? "no data")</td><td>\(o.budgetRemaining.map(percent) ?? "–")"
                    + (o.missing.map { "<br><small>\(escape($0))</small>" } ?? "") + "</td></tr>"
            }
            body += "</table></section>"
        }
        if !report.charts.isEmpty {
            body += "<section><h2>Pipeline</h2>" + report.charts.map { chart in
                chartSVG(chart) + (chart.hasData ? "" : "<p class=\"meta\">\(escape(chart.title)): \(escape(chart.empty ?? "no samples"))</p>")
            }.joined() + "</section>"
        }
        if !report.notes.isEmpty {
            body += "<section><h2>Notes</h2><ul>" + report.notes.map { "<li>\(escape($0))</li>" }.joined() + "</ul></section>"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="\(contentSecurityPolicy)">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>provision report: \(escape(report.plan)) run \(t.run)</title>
            <style>\(css)</style></head>
            <body>\(body)</body></html>

            """
    }

    static let css = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:12px;color:#222}
        h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.4em}
        .meta{color:#555}svg{width:100%;height:auto;display:block}table{border-collapse:collapse;width:100%}
        td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}th{white-space:nowrap}
        tr.fail td{background:#fde8e8}.legend{font-size:.85em;color:#444}.k{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px}
        .k.ok{background:#3c8dbc}.k.adopted{background:#9ecae1}.k.failed{background:#d9534f}.k.retried{background:#f0ad4e}.k.other{background:#bbb}
        .k.crit{border:2px solid #111;width:8px;height:6px}
        .bar.ok{fill:#3c8dbc}.bar.adopted{fill:#9ecae1}.bar.failed{fill:#d9534f}.bar.other{fill:#bbb}.bar.crit{stroke:#111;stroke-width:2}
        .retry{fill:#f0ad4e}.axis{stroke:#888;stroke-width:1}.grid{stroke:#eee}.label{font-size:11px;fill:#333}
        .line{fill:none;stroke-width:1.6}.chart{margin:10px 0 18px}.trouble li.failed{color:#a94442}.trouble li.retried{color:#8a6d3b}
        .scroll{overflow-x:auto}
        @media (max-width:600px){body{font-size:13px;padding:6px}.scroll svg{min-width:860px}}
        @media print{body{max-width:none}section{break-inside:avoid}.scroll{overflow:visible}.scroll svg{min-width:0}}
        """

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// One row per step (fan-out children under their group), bars scaled to the run's length.
    static func timelineSVG(_ t: RunTimeline) -> String {
        let width = 960.0, left = 250.0, right = 20.0, row = 18.0, top = 24.0
        let span = max(t.seconds, t.bars.map(\.end).max() ?? 0, 0.001)
        let scale = (width - left - right) / span
        var rows: [String] = []
        var y = top
        var group: String?
        for bar in t.bars {
            if let g = bar.group, g != group {
                rows.append("<text class=\"label\" x=\"4\" y=\"\(f(y + 12))\" font-weight=\"bold\">\(escape(g))</text>")
                y += row
            }
            group = bar.group
            let name = bar.group.map { "  " + bar.step.dropFirst($0.count + 1) } ?? bar.step
            let kind = bar.outcome == "failed" ? "failed" : ["adopted", "unchanged", "kept"].contains(bar.outcome) ? "adopted"
                : ["succeeded", "torn_down"].contains(bar.outcome) ? "ok" : "other"
            let x = left + bar.start * scale, w = max(2, bar.duration * scale)
            let title = "\(bar.step): \(bar.outcome), \(seconds(bar.duration)), \(bar.attempts) attempt(s)" + (bar.message.map { ", \($0)" } ?? "")
            rows.append("<text class=\"label\" x=\"\(bar.group == nil ? 4 : 14)\" y=\"\(f(y + 12))\">\(escape(String(name.prefix(34))))</text>")
            rows.append("<rect class=\"bar \(kind)\(bar.critical ? " crit" : "")\" data-step=\"\(escape(bar.step))\" data-outcome=\"\(escape(bar.outcome))\" "
                + "data-attempts=\"\(bar.attempts)\" data-retries=\"\(bar.retries)\" x=\"\(f(x))\" y=\"\(f(y + 2))\" "
                + "width=\"\(f(w))\" height=\"\(f(row - 5))\"><title>\(escape(title))</title></rect>")
            if bar.retries > 0 {
                rows.append("<text class=\"label retry-mark\" x=\"\(f(x + w + 3))\" y=\"\(f(y + 12))\">↻\(bar.attempts)</text>")
                rows.append("<rect class=\"retry\" x=\"\(f(x))\" y=\"\(f(y + row - 4))\" width=\"\(f(w))\" height=\"2\"/>")
            }
            y += row
        }
        let axis = ticks(span).map { s in
            "<line class=\"grid\" x1=\"\(f(left + s * scale))\" x2=\"\(f(left + s * scale))\" y1=\"\(f(top - 4))\" y2=\"\(f(y))\"/>"
                + "<text class=\"label\" x=\"\(f(left + s * scale))\" y=\"14\" text-anchor=\"middle\">\(seconds(s))</text>"
        }.joined()
        return "<div class=\"scroll\"><svg class=\"timeline\" viewBox=\"0 0 \(f(width)) \(f(y + 6))\" role=\"img\" aria-label=\"step timeline\">\(axis)\(rows.joined())</svg></div>"
    }

    /// A line chart with time and value axes, units and a legend.
    static func chartSVG(_ chart: ReportDocument.Chart) -> String {
        let width = 960.0, height = 240.0, left = 64.0, right = 16.0, top = 28.0, bottom = 40.0
        let span = max(chart.end.timeIntervalSince(chart.start), 1)
        let values = chart.series.flatMap { $0.points.map { $0[1] } }.filter(\.isFinite)
        // All zero (no dead letter, say): a 0–1 axis, not one of a billionth.
        let high = ((values.max() ?? 0) > 0 ? values.max()! : 1) * 1.1
        let sx = (width - left - right) / span, sy = (height - top - bottom) / high
        var svg = "<div class=\"scroll\"><svg class=\"chart\" data-points=\"\(chart.series.map(\.points.count).reduce(0, +))\" viewBox=\"0 0 \(f(width)) \(f(height + 18 * Double((chart.series.count + 3) / 4)))\" role=\"img\" aria-label=\"\(escape(chart.title))\">"
        svg += "<text class=\"label\" x=\"\(f(left))\" y=\"16\" font-weight=\"bold\">\(escape(chart.title)) (\(escape(chart.unit)))</text>"
        for v in ticks(high / 1.1) {
            let y = height - bottom - v * sy
            svg += "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y))\" y2=\"\(f(y))\"/>"
            svg += "<text class=\"label\" x=\"\(f(left - 4))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(number(v))</text>"
        }
        for s in ticks(span) {
            let x = left + s * sx
            svg += "<text class=\"label\" x=\"\(f(x))\" y=\"\(f(height - bottom + 14))\" text-anchor=\"middle\">\(clock(chart.start.addingTimeInterval(s)))</text>"
        }
        svg += "<line class=\"axis\" x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(f(height - bottom))\"/>"
        svg += "<line class=\"axis\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(height - bottom))\" y2=\"\(f(height - bottom))\"/>"
        svg += "<text class=\"label\" x=\"\(f(width - right))\" y=\"\(f(height - bottom + 28))\" text-anchor=\"end\">time (UTC), \(clock(chart.start))–\(clock(chart.end))</text>"
        for (i, series) in chart.series.enumerated() {
            let color = palette[i % palette.count]
            let points = series.points.filter { $0[1].isFinite }.map { "\(f(left + $0[0] * sx)),\(f(height - bottom - $0[1] * sy))" }
            if points.count > 1 { svg += "<polyline class=\"line\" stroke=\"\(color)\" points=\"\(points.joined(separator: " "))\"/>" }
            // One marker per sample, carrying its value: the page can be checked point by point.
            for (p, point) in zip(points, series.points.filter { $0[1].isFinite }) {
                let xy = p.split(separator: ",")
                svg += "<circle class=\"point\" data-t=\"\(f(point[0]))\" data-value=\"\(number(point[1]))\" cx=\"\(xy[0])\" cy=\"\(xy[1])\" "
                    + "r=\"\(points.count == 1 ? "2.5" : "1.2")\" fill=\"\(color)\"/>"
            }
            let lx = left + Double(i % 4) * 220, ly = height + 14 + 18 * Double(i / 4)
            svg += "<rect x=\"\(f(lx))\" y=\"\(f(ly - 9))\" width=\"12\" height=\"4\" fill=\"\(color)\"/>"
            svg += "<text class=\"label\" x=\"\(f(lx + 16))\" y=\"\(f(ly - 4))\">\(escape(String(series.label.prefix(30))))</text>"
        }
        if !chart.hasData {
            svg += "<text class=\"label empty\" x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\">no data: "
                + "\(escape(String((chart.empty ?? "no samples").prefix(140))))</text>"
        }
        return svg + "</svg></div>"
    }

    /// About five round tick values from 0 to `max`.
    static func ticks(_ max: Double) -> [Double] {
        guard max > 0, max.isFinite else { return [0] }
        let raw = max / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        return stride(from: 0.0, through: max, by: step).map { $0 }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
    static func escape<S: StringProtocol>(_ text: S) -> String { escape(String(text)) }
    static func f(_ value: Double) -> String { String(format: "%.1f", value) }
    static func number(_ value: Double) -> String {
        value >= 100 || value == value.rounded() ? String(format: "%.0f", value) : value >= 1 ? String(format: "%.1f", value) : String(format: "%.3g", value)
    }
    static func percent(_ value: Double) -> String { String(format: "%.2f %%", value * 100) }
    static func seconds(_ value: Double) -> String {
        value >= 60 ? String(format: "%dm%02ds", Int(value) / 60, Int(value) % 60)
            : value >= 10 || value == 0 ? String(format: "%.0fs", value) : value >= 1 ? String(format: "%.1fs", value) : String(format: "%.0fms", value * 1000)
    }
    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
    static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: date)
    }
}
