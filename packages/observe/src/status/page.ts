import { createHash } from 'node:crypto';

/**
 * The status page: one self-contained document (no CDN, no external file), inline CSS and JS allowed by
 * their hashes in the Content-Security-Policy. It polls `status.json` each second; with a token, the
 * page reads it from its URL fragment (`#token=…`, never sent to the server) and sends it as a bearer
 * token. Every number is written with textContent, never as HTML: keys and subjects cannot inject markup.
 */
const STYLE = `
:root{--bg:#0f1419;--panel:#171d24;--line:#2a333d;--text:#d8dee4;--dim:#8b97a3;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--accent:#58a6ff}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--text)}
header{display:flex;align-items:baseline;gap:16px;padding:12px 20px;border-bottom:1px solid var(--line)}
header h1{font-size:18px;margin:0}header .dim{color:var(--dim)}#state{margin-left:auto}
main{padding:16px 20px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
.tiles{grid-column:1/-1;display:grid;gap:12px;grid-template-columns:repeat(auto-fit,minmax(150px,1fr))}
.tile,.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.tile .v{font-size:28px;font-weight:600;font-variant-numeric:tabular-nums}.tile .k{color:var(--dim);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.panel h2{font-size:13px;margin:0 0 8px;color:var(--dim);text-transform:uppercase;letter-spacing:.04em}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line)}
th{color:var(--dim);font-weight:500;font-size:12px}td.n,th.n{text-align:right}
svg{width:100%;height:160px;display:block}.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;color:var(--dim);margin-top:6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.bad{color:var(--bad)}.warn{color:var(--warn)}.ok{color:var(--ok)}.empty{color:var(--dim);font-style:italic}
`;

const SCRIPT = `
(() => {
  const COLORS = ['#f85149','#d29922','#58a6ff','#a371f7','#3fb950','#db61a2','#39c5cf','#e3b341','#8b949e'];
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US');
  const left = (s) => { if (s < 0) return 'expired'; const d = Math.floor(s/86400), h = Math.floor(s%86400/3600), m = Math.floor(s%3600/60);
    return d ? d + 'd ' + h + 'h' : h ? h + 'h ' + m + 'm' : m ? m + 'm ' + (s%60) + 's' : s + 's'; };
  const cell = (tr, text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; };
  const rows = (id, items, render, empty) => { const body = $(id); body.replaceChildren();
    if (!items.length) { const tr = document.createElement('tr'); const td = cell(tr, empty, 'empty'); td.colSpan = 9; body.appendChild(tr); return; }
    for (const it of items) { const tr = document.createElement('tr'); render(tr, it); body.appendChild(tr); } };
  const NS = 'http://www.w3.org/2000/svg';
  const el = (name, attrs) => { const e = document.createElementNS(NS, name); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
  function line(svg, values, color) {
    svg.replaceChildren(); const w = 600, h = 160, max = Math.max(1, ...values);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h); svg.setAttribute('preserveAspectRatio', 'none');
    const step = values.length > 1 ? w / (values.length - 1) : w;
    const pts = values.map((v, i) => (i * step).toFixed(1) + ',' + (h - 4 - (v / max) * (h - 20)).toFixed(1)).join(' ');
    svg.appendChild(el('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' }));
    const t = el('text', { x: 4, y: 14, fill: '#8b97a3', 'font-size': 12 }); t.textContent = 'max ' + max; svg.appendChild(t);
  }
  function bars(svg, history, reasons) {
    svg.replaceChildren(); const w = 600, h = 160; svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h); svg.setAttribute('preserveAspectRatio', 'none');
    const totals = history.map((s) => Object.values(s.rejected).reduce((a, b) => a + b, 0)); const max = Math.max(1, ...totals);
    const bw = w / Math.max(1, history.length);
    history.forEach((s, i) => { let y = h;
      reasons.forEach((r, j) => { const v = s.rejected[r] || 0; if (!v) return; const bh = (v / max) * (h - 20); y -= bh;
        svg.appendChild(el('rect', { x: (i * bw).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 0.5).toFixed(1), height: bh.toFixed(1), fill: COLORS[j % COLORS.length] })); }); });
    const t = el('text', { x: 4, y: 14, fill: '#8b97a3', 'font-size': 12 }); t.textContent = 'max ' + max + ' per sample'; svg.appendChild(t);
  }
  function render(r) {
    $('open-now').textContent = fmt(r.totals.open); $('opened-total').textContent = fmt(r.totals.opened);
    $('rejected-total').textContent = fmt(r.totals.rejected); $('bans-active').textContent = fmt(r.bansActive);
    const soonest = r.certificates.length ? Math.min(...r.certificates.map((c) => c.secondsLeft)) : undefined;
    const cert = $('cert-left'); cert.textContent = soonest === undefined ? '–' : left(soonest);
    cert.className = 'v ' + (soonest === undefined ? '' : soonest < 7 * 86400 ? 'bad' : soonest < 30 * 86400 ? 'warn' : 'ok');
    $('uptime').textContent = 'up ' + left(Math.round((r.now - r.startedAt) / 1000));
    const minutes = Math.round(r.history.length * r.sampleEveryMs / 60000);
    $('span').textContent = 'last ' + (minutes || 1) + ' min, one point per ' + r.sampleEveryMs / 1000 + ' s';
    line($('chart-open'), r.history.map((s) => s.open), '#58a6ff');
    const reasons = Object.entries(r.rejectedByReason).sort((a, b) => b[1] - a[1]).map((e) => e[0]);
    bars($('chart-rejected'), r.history, reasons);
    const legend = $('legend'); legend.replaceChildren();
    reasons.forEach((reason, j) => { const s = document.createElement('span'); const i = document.createElement('i'); i.style.background = COLORS[j % COLORS.length];
      s.appendChild(i); s.appendChild(document.createTextNode(reason + ' ' + fmt(r.rejectedByReason[reason]))); s.dataset.reason = reason; legend.appendChild(s); });
    rows('reasons', Object.entries(r.rejectedByReason).sort((a, b) => b[1] - a[1]), (tr, [reason, n]) => { tr.dataset.reason = reason; cell(tr, reason); cell(tr, fmt(n), 'n'); }, 'no refusals');
    rows('listeners', r.listeners, (tr, l) => { tr.dataset.listener = l.listener; cell(tr, l.listener); cell(tr, fmt(l.open), 'n open'); cell(tr, fmt(l.opened), 'n opened');
      cell(tr, fmt(l.rejected), 'n rejected'); cell(tr, fmt(l.reported), 'n'); cell(tr, fmt(l.bytesIn), 'n'); cell(tr, fmt(l.bytesOut), 'n'); }, 'no listeners');
    rows('top-keys', r.topKeys, (tr, k) => { tr.dataset.key = k.key; cell(tr, k.key); cell(tr, fmt(k.count), 'n count'); cell(tr, k.lastReason); cell(tr, left(Math.round((r.now - k.lastAt) / 1000)) + ' ago'); }, 'nobody refused yet');
    rows('bans', r.bans, (tr, b) => { tr.dataset.key = b.key; cell(tr, b.key); cell(tr, left(b.secondsLeft), 'n'); cell(tr, fmt(b.offences), 'n'); }, 'no active bans');
    rows('certs', r.certificates, (tr, c) => { cell(tr, c.subject); cell(tr, new Date(c.notAfter).toISOString().slice(0, 10)); cell(tr, left(c.secondsLeft), 'n ' + (c.secondsLeft < 7 * 86400 ? 'bad' : c.secondsLeft < 30 * 86400 ? 'warn' : 'ok')); }, 'no TLS certificates');
    document.body.dataset.updated = String(r.now);
  }
  async function poll() {
    try {
      const res = await fetch('status.json', { headers: token ? { authorization: 'Bearer ' + token } : {}, cache: 'no-store' });
      if (!res.ok) throw new Error(res.status === 401 ? 'unauthorized: open the page as …/#token=<token>' : 'HTTP ' + res.status);
      render(await res.json()); $('state').textContent = 'live'; $('state').className = 'ok';
    } catch (err) { $('state').textContent = String(err.message || err); $('state').className = 'bad'; }
    setTimeout(poll, 1000);
  }
  poll();
})();
`;

const BODY = `<header><h1>sock status</h1><span class="dim" id="uptime"></span><span class="dim" id="span"></span><span id="state" class="dim">connecting…</span></header>
<main>
<section class="tiles">
<div class="tile"><div class="k">open now</div><div class="v" id="open-now">–</div></div>
<div class="tile"><div class="k">opened</div><div class="v" id="opened-total">–</div></div>
<div class="tile"><div class="k">refused</div><div class="v" id="rejected-total">–</div></div>
<div class="tile"><div class="k">active bans</div><div class="v" id="bans-active">–</div></div>
<div class="tile"><div class="k">certificate expires in</div><div class="v" id="cert-left">–</div></div>
</section>
<section class="panel"><h2>connections open</h2><svg id="chart-open" role="img" aria-label="connections open over time"></svg></section>
<section class="panel"><h2>refusals by reason</h2><svg id="chart-rejected" role="img" aria-label="refusals by reason over time"></svg><div class="legend" id="legend"></div></section>
<section class="panel"><h2>listeners</h2><table><thead><tr><th>listener</th><th class="n">open</th><th class="n">opened</th><th class="n">refused</th><th class="n">reported</th><th class="n">bytes in</th><th class="n">bytes out</th></tr></thead><tbody id="listeners"></tbody></table></section>
<section class="panel"><h2>refusals since start</h2><table><thead><tr><th>reason</th><th class="n">count</th></tr></thead><tbody id="reasons"></tbody></table></section>
<section class="panel"><h2>top offending keys</h2><table><thead><tr><th>key</th><th class="n">refusals</th><th>last reason</th><th>last</th></tr></thead><tbody id="top-keys"></tbody></table></section>
<section class="panel"><h2>active bans</h2><table><thead><tr><th>key</th><th class="n">time left</th><th class="n">offences</th></tr></thead><tbody id="bans"></tbody></table></section>
<section class="panel"><h2>TLS certificates</h2><table><thead><tr><th>subject</th><th>not after</th><th class="n">left</th></tr></thead><tbody id="certs"></tbody></table></section>
</main>`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const STATUS_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>sock status</title><style>${STYLE}</style></head><body>${BODY}<script>${SCRIPT}</script></body></html>`;

/** Only this page's own script and style may run; it may fetch only from its own origin. */
export const STATUS_PAGE_CSP = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
