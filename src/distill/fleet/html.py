"""The fleet report as one self-contained HTML page: inline CSS and script (allowed by
their hashes in a strict Content-Security-Policy, nothing else may load: no CDN, no
fonts, no images, no requests), inline SVG charts (migration progress and attack
surface per namespace), tables that sort (click a heading) and filter (text,
namespace, not yet distroless). Every string that comes from a manifest or an image
is HTML-escaped: a workload's name is input like any other."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any

from distill.fleet.report import GRADES, headline

CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--mid:#9a6700;--fg:#1f2328;--dim:#59636e;--line:#d1d9e0;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);margin:0 auto;padding:24px;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.dim{color:var(--dim)}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:200px;background:var(--bg)}
.card b{display:block;font-size:20px}
.charts{display:flex;flex-wrap:wrap;gap:24px}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
table{border-collapse:collapse;width:100%;margin-top:8px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);cursor:pointer;user-select:none;white-space:nowrap;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num,th.num{text-align:right}
code{font:12px ui-monospace,monospace;word-break:break-all}
.g-A,.g-B{color:var(--ok);font-weight:600}.g-C{color:var(--mid);font-weight:600}.g-D,.g-F{color:var(--bad);font-weight:600}
.yes{color:var(--ok)}.no{color:var(--bad)}
.controls{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.controls input[type=search]{padding:4px 8px;min-width:260px}
ul.errors li{color:var(--bad)}
"""

SCRIPT = """
(function () {
  "use strict";
  function key(td) {
    var k = td.getAttribute("data-sort");
    return k !== null ? k : td.textContent.trim().toLowerCase();
  }
  function sortBy(table, i, th) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var heads = table.tHead.rows[0].cells;
    for (var h = 0; h < heads.length; h++) heads[h].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var num = th.classList.contains("num");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[i]), y = key(b.cells[i]);
      if (num) return ((parseFloat(x) || 0) - (parseFloat(y) || 0)) * dir;
      return x < y ? -dir : x > y ? dir : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, i) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, i, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(table, i, th); });
    });
  });
  var table = document.getElementById("workloads");
  var text = document.getElementById("filter");
  var ns = document.getElementById("ns");
  var todo = document.getElementById("todo");
  var count = document.getElementById("count");
  function apply() {
    var q = text.value.trim().toLowerCase(), shown = 0;
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) &&
        (!ns.value || r.getAttribute("data-ns") === ns.value) &&
        (!todo.checked || r.getAttribute("data-distroless") !== "yes");
      r.hidden = !ok;
      if (ok) shown++;
    }
    count.textContent = shown + " of " + rows.length + " workloads shown";
  }
  text.addEventListener("input", apply);
  ns.addEventListener("change", apply);
  todo.addEventListener("change", apply);
  // a link can carry the view: #q=TEXT&ns=NAMESPACE&todo=1&sort=COLUMN&desc=1
  var params = new URLSearchParams(location.hash.slice(1));
  if (params.get("q")) text.value = params.get("q");
  if (params.get("ns")) ns.value = params.get("ns");
  if (params.get("todo") === "1") todo.checked = true;
  var heads = table.tHead.rows[0].cells;
  for (var h = 0; h < heads.length; h++) {
    if (heads[h].getAttribute("data-key") === params.get("sort")) {
      sortBy(table, h, heads[h]);
      if (params.get("desc") === "1") sortBy(table, h, heads[h]);
    }
  }
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp() -> str:
    return (
        f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; img-src 'none'; "
        "font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _bars(rows: list[tuple[str, float, str]], colour: str, title: str, rest: str = "#e6e9ed") -> str:
    """A horizontal bar chart: (label, fraction 0..1, value text) per row."""
    width, label_w, bar_w, row_h = 560, 170, 280, 24
    height = 28 + row_h * max(1, len(rows))
    out = [
        f'<svg width="{width}" height="{height}" role="img" '
        f'aria-label="{e(title)}"><text x="0" y="16" font-weight="600">{e(title)}</text>'
    ]
    for i, (label, frac, value) in enumerate(rows):
        y = 28 + i * row_h
        short = label if len(label) <= 24 else label[:23] + "…"
        w = round(max(0.0, min(1.0, frac)) * bar_w, 1)
        out.append(
            f'<g><title>{e(label)}: {e(value)}</title><text x="0" y="{y + 15}">{e(short)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="16" fill="{rest}"/>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="16" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 8}" y="{y + 15}">{e(value)}</text></g>'
        )
    if not rows:
        out.append('<text x="0" y="44">no namespaces</text>')
    out.append("</svg>")
    return "".join(out)


def _yes(v: bool | None) -> tuple[str, str]:
    return ("yes", "yes") if v is True else ("no", "no") if v is False else ("?", "")


def _issues(w: dict[str, Any]) -> str:
    parts = []
    if w["shells"]:
        parts.append("shells: " + ", ".join(w["shells"]))
    if w["package_managers"]:
        parts.append("package managers: " + ", ".join(w["package_managers"]))
    if w["setuid"]:
        parts.append(f"{w['setuid']} setuid files")
    if w["root"]:
        parts.append("runs as root")
    if w["debug"]:
        parts.append("debug image: " + ", ".join(w["debug"]))
    if w["unpinned"]:
        parts.append("unpinned: " + ", ".join(w["unpinned"]))
    if w["exec_probes"]:
        parts.append("exec probes: " + "; ".join(w["exec_probes"]))
    if w["errors"]:
        parts.append("not read: " + "; ".join(w["errors"]))
    return "<br>".join(e(p) for p in parts) or '<span class="dim">-</span>'


def _workload_row(w: dict[str, Any]) -> str:
    text, cls = _yes(w["distroless"])
    grade = w["grade"] or "-"
    images = "<br>".join(
        f"<code>{e(c['image'] or '(none)')}</code>"
        + (f' <span class="dim">{e(c["role"])}</span>' if c["role"] != "app" else "")
        for c in w["containers"]
    )
    vulns = w.get("vulnerabilities")
    vcell = (
        f'<td class="num" data-sort="{vulns["total"]}">{vulns["total"]} ({vulns["fixable"]} fixable)</td>'
        if vulns
        else ('<td class="num" data-sort="-1">-</td>' if "vulnerabilities" in w else "")
    )
    return (
        f'<tr data-ns="{e(w["namespace"])}" data-distroless="{text}">'
        f"<td>{e(w['namespace'])}</td><td>{e(w['kind'])}/{e(w['name'])}</td>"
        f'<td class="g-{e(grade)}" data-sort="{GRADES.index(grade) if grade in GRADES else 9}">{e(grade)}</td>'
        f'<td class="{cls}">{text}</td><td>{e(w["flavor"] or "-")}</td>'
        f'<td class="num">{w["packages"]}</td><td class="num">{w["mib"]:.1f}</td>'
        f"{vcell}<td>{images}</td><td>{_issues(w)}</td></tr>"
    )


def page(doc: dict[str, Any]) -> str:
    s, r, rm = doc["summary"], doc["removable"], doc["removed"]
    nss = doc["namespaces"]
    migration = _bars(
        [(n["namespace"], n["share"], f"{n['distroless']}/{n['workloads']} ({n['share']:.0%})") for n in nss],
        "#1a7f37",
        "Workloads on distroless, by namespace",
    )
    most = max((n["removable"]["packages"] for n in nss), default=0) or 1
    most_mib = max((n["removable"]["mib"] for n in nss), default=0) or 1
    surface = _bars(
        [
            (n["namespace"], n["removable"]["packages"] / most, f"{n['removable']['packages']} packages")
            for n in nss
        ],
        "#cf222e",
        "Packages still removable, by namespace",
        "#f6f8fa",
    )
    surface_mib = _bars(
        [(n["namespace"], n["removable"]["mib"] / most_mib, f"{n['removable']['mib']:.1f} MiB") for n in nss],
        "#9a6700",
        "MiB still removable, by namespace",
        "#f6f8fa",
    )
    with_vulns = doc["vulnerabilities"]["available"]
    heads = [
        ("namespace", ""),
        ("workload", ""),
        ("grade", "num"),
        ("distroless", ""),
        ("flavor that fits", ""),
        ("packages", "num"),
        ("MiB", "num"),
        *([("vulnerabilities", "num")] if with_vulns else []),
        ("images", ""),
        ("attack surface and issues", ""),
    ]
    thead = "".join(
        f'<th data-key="{e(h.split()[0])}"' + (f' class="{c}"' if c else "") + f">{e(h)}</th>"
        for h, c in heads
    )
    rows = "\n".join(_workload_row(w) for w in doc["workloads"])
    options = "".join(f'<option value="{e(n["namespace"])}">{e(n["namespace"])}</option>' for n in nss)
    images = "\n".join(
        f'<tr><td><code>{e(d)}</code></td><td class="g-{e(i["grade"])}" '
        f'data-sort="{GRADES.index(i["grade"]) if i["grade"] in GRADES else 9}">{e(i["grade"])}</td>'
        f'<td>{e(i["verdict"])}</td><td>{e(i["os"] or "-")}</td><td class="num">{i["packages"]}</td>'
        f'<td class="num">{i["content_bytes"] / 1048576:.1f}</td><td>{e(i["flavor"] or "-")}</td>'
        f"<td>{e(sum(1 for w in doc['workloads'] if d in w['images']))}</td></tr>"
        for d, i in doc["images"].items()
    )
    b = doc["baseline"]
    baseline = ""
    if b is not None:
        items = "".join(
            f"<li><b>{e(what)}</b> ({len(b[what])}): "
            + ", ".join(f"<code>{e(k)}</code>" for k in b[what])
            + "</li>"
            for what in ("migrated", "regressed", "improved", "new", "gone")
        )
        baseline = (
            f'<h2>Since {e(b["generated"])} <span class="dim">({e(b["file"])})</span></h2><ul>{items}</ul>'
        )
    removed = (
        f"<b>{rm['packages']} packages, {rm['shells']} shells, {rm['mib']:.1f} MiB</b>since {e(rm['since'])}"
        if rm["known"]
        else "<b>not known yet</b>run the next report with --baseline THIS.json"
    )
    errors = "".join(f"<li>{e(x)}</li>" for x in doc["errors"])
    notes = "".join(f"<li>{e(x)}</li>" for x in doc["notes"])
    vnote = "" if with_vulns else f'<p class="dim">Vulnerabilities: {e(doc["vulnerabilities"]["note"])}</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp()}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>distill fleet report</title>
<style>{CSS}</style></head>
<body>
<h1>Fleet report</h1>
<p class="dim">{e(headline(doc))}<br>generated {e(doc["generated"])} by {e(doc["tool"])} for {e(doc["arch"])}</p>
<div class="cards">
<div class="card"><b>{s["distroless"]}/{s["workloads"]} ({s["share"]:.0%})</b>workloads on distroless</div>
<div class="card"><b>{s["images"]}</b>images audited ({s["images_distroless"]} distroless, {s["images_failed"]} not read)</div>
<div class="card"><b>{r["packages"]} packages, {r["shells"]} shells, {r["mib"]:.1f} MiB</b>still removable ({r["images"]} images, {r["package_managers"]} package managers, {r["setuid"]} setuid files)</div>
<div class="card">{removed}</div>
</div>
<div class="charts">{migration}{surface}{surface_mib}</div>
{baseline}
<h2>Workloads, worst first</h2>
<div class="controls"><input id="filter" type="search" placeholder="filter: name, image, shell…" aria-label="filter">
<select id="ns" aria-label="namespace"><option value="">all namespaces</option>{options}</select>
<label><input id="todo" type="checkbox"> not yet on distroless</label> <span id="count" class="dim"></span></div>
<table id="workloads" class="sortable"><thead><tr>{thead}</tr></thead>
<tbody>
{rows}
</tbody></table>
{vnote}
<h2>Images</h2>
<table id="images" class="sortable"><thead><tr><th>digest</th><th class="num">grade</th><th>verdict</th><th>os</th>
<th class="num">packages</th><th class="num">MiB</th><th>flavor that fits</th><th class="num">workloads</th></tr></thead>
<tbody>
{images}
</tbody></table>
{f'<h2>Errors</h2><ul class="errors">{errors}</ul>' if errors else ""}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<script>{SCRIPT}</script>
</body></html>
"""
