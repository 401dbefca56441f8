// Load for the lab and the soak. Plain node:net, length-prefixed frames (u32 big-endian), bounded in time.
//   node lab/load.mjs legit  --host H --port P --seconds S [--lanes 4] [--rate 50] [--local A]
//   node lab/load.mjs attack --host H --port P --seconds S --kind slowloris|flood|oversize|slowread|mix
//                            --sources 10.67.0.0/16:500 | 127.0.0.10-127.0.0.250  [--scale 1]
// Prints one JSON line at the end: legit → { ok, fail, p50, p99, samples }, attack → counters.
import net from 'node:net';

const args = process.argv.slice(2);
const role = args[0];
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', 0));
const seconds = Number(opt('--seconds', 10));
const deadline = Date.now() + seconds * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const frame = (payload) => {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  payload.copy(out, 4);
  return out;
};

function connect(localAddress, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, localAddress, noDelay: true });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('connect timeout'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** One request/response on `s`: resolves with ms, rejects on close, error or timeout. */
function roundTrip(s, payload, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let got = Buffer.alloc(0);
    const want = 4 + payload.length;
    const done = (err) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', onClose);
      s.off('error', onClose);
      if (err) reject(err);
      else resolve(performance.now() - started);
    };
    const onData = (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= want) done(got.subarray(4, want).equals(payload) ? undefined : new Error('bad echo'));
    };
    const onClose = () => done(new Error('closed'));
    const t = setTimeout(() => done(new Error('timeout')), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
    s.once('error', onClose);
    s.write(frame(payload));
  });
}

async function legit() {
  const lanes = Number(opt('--lanes', 4));
  const rate = Number(opt('--rate', 50)); // requests per second per lane
  const perConn = Number(opt('--per-conn', 25));
  const local = opt('--local', undefined);
  const lat = [];
  let ok = 0;
  let fail = 0;
  const errors = {};
  const lane = async () => {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      let s;
      try {
        s = await connect(local);
      } catch (e) {
        fail++;
        errors[e.code ?? e.message] = (errors[e.code ?? e.message] ?? 0) + 1;
        await sleep(1000 / rate);
        continue;
      }
      for (let i = 0; i < perConn && Date.now() < deadline; i++) {
        const next = performance.now() + 1000 / rate;
        try {
          const ms = await roundTrip(s, Buffer.from(`hello ${i} ${Math.random()}`));
          lat.push(i === 0 ? performance.now() - t0 : ms);
          ok++;
        } catch (e) {
          fail++;
          errors[e.message] = (errors[e.message] ?? 0) + 1;
          break;
        }
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
      }
      s.destroy();
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
  return { ok, fail, samples: lat.length, p50: q(0.5), p99: q(0.99), max: lat.at(-1) ?? null, errors };
}

/** Source addresses: `10.67.0.0/16:500` (500 addresses spread over the /16) or `127.0.0.10-127.0.0.250`. */
function sources(spec) {
  if (spec.includes('-')) {
    const [a, b] = spec.split('-');
    const base = a.split('.').slice(0, 3).join('.');
    const from = Number(a.split('.')[3]);
    const to = Number(b.split('.')[3]);
    return Array.from({ length: to - from + 1 }, (_, i) => `${base}.${from + i}`);
  }
  const [cidr, count] = spec.split(':');
  const [o1, o2] = cidr.split('.');
  return Array.from(
    { length: Number(count) },
    (_, i) => `${o1}.${o2}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
  );
}

async function attack() {
  const kind = opt('--kind', 'flood');
  const scale = Number(opt('--scale', 1));
  const addrs = sources(opt('--sources', '127.0.0.10-127.0.0.250'));
  const c = { opened: 0, refused: 0, closedByServer: 0, bytesSent: 0, maxOpen: 0 };
  let open = 0;
  let n = 0;
  const nextAddr = () => addrs[n++ % addrs.length];
  const track = (s) => {
    c.opened++;
    open++;
    if (open > c.maxOpen) c.maxOpen = open;
    s.on('error', () => {});
    s.on('close', () => {
      open--;
    });
    s.on('end', () => c.closedByServer++);
  };
  const raw = (onConnect) => {
    const s = net.connect({ host, port, localAddress: nextAddr() });
    s.on('error', () => c.refused++);
    s.once('connect', () => {
      track(s);
      onConnect(s);
    });
    return s;
  };
  const all = new Set();
  const tasks = [];

  // Slowloris: keep `target` sockets open, each trickling one byte of a frame header every ~1.5 s.
  const slowloris = (target) => {
    const timer = setInterval(() => {
      for (const s of all) {
        if (!s.destroyed && s.slow) {
          s.write(Buffer.from([0]));
          c.bytesSent++;
        }
      }
    }, 1500);
    const opener = setInterval(() => {
      let live = 0;
      for (const s of all) if (!s.destroyed && s.slow) live++;
      for (let i = live; i < target && i < live + 100; i++) {
        const s = raw(() => {});
        s.slow = true;
        all.add(s);
        s.on('close', () => all.delete(s));
      }
    }, 100);
    tasks.push(
      () => clearInterval(timer),
      () => clearInterval(opener),
    );
  };
  // Flood: `perSecond` new connections, each sending a valid frame, then closing after 100 ms.
  const flood = (perSecond) => {
    const tick = setInterval(() => {
      for (let i = 0; i < perSecond / 20; i++) {
        const s = raw((s) => {
          s.write(frame(Buffer.from('x')));
          setTimeout(() => s.destroy(), 100);
        });
        all.add(s);
        s.on('close', () => all.delete(s));
      }
    }, 50);
    tasks.push(() => clearInterval(tick));
  };
  // Oversize: a header announcing 100 MB, then 64 KiB writes as fast as the socket drains.
  const oversize = (perSecond) => {
    const junk = Buffer.alloc(64 * 1024, 0x41);
    const tick = setInterval(() => {
      for (let i = 0; i < perSecond / 10; i++) {
        const s = raw((s) => {
          const head = Buffer.alloc(4);
          head.writeUInt32BE(100 * 2 ** 20);
          s.write(head);
          const pump = () => {
            while (!s.destroyed && Date.now() < deadline && s.write(junk)) c.bytesSent += junk.length;
          };
          s.on('drain', pump);
          pump();
          setTimeout(() => s.destroy(), 3000);
        });
        all.add(s);
        s.on('close', () => all.delete(s));
      }
    }, 100);
    tasks.push(() => clearInterval(tick));
  };
  // Slow readers: `count` connections sending valid 16 KiB frames and never reading the echoes.
  const slowread = (count) => {
    const payload = frame(Buffer.alloc(16 * 1024, 0x42));
    const opener = setInterval(() => {
      let live = 0;
      for (const s of all) if (!s.destroyed && s.reader) live++;
      for (let i = live; i < count && i < live + 20; i++) {
        const s = raw((s) => {
          s.pause();
          const pump = () => {
            while (!s.destroyed && Date.now() < deadline && s.write(payload)) c.bytesSent += payload.length;
          };
          s.on('drain', pump);
          pump();
        });
        s.reader = true;
        all.add(s);
        s.on('close', () => all.delete(s));
      }
    }, 200);
    tasks.push(() => clearInterval(opener));
  };

  if (kind === 'slowloris') slowloris(5000 * scale);
  else if (kind === 'flood') flood(1000 * scale);
  else if (kind === 'oversize') oversize(100 * scale);
  else if (kind === 'slowread') slowread(200 * scale);
  else if (kind === 'mix') {
    slowloris(1500 * scale);
    flood(400 * scale);
    oversize(30 * scale);
    slowread(60 * scale);
  } else throw new Error(`unknown attack ${kind}`);
  await sleep(Math.max(0, deadline - Date.now()));
  for (const stop of tasks) stop();
  for (const s of all) s.destroy();
  return { kind, sources: addrs.length, ...c };
}

const hard = setTimeout(() => process.exit(3), (seconds + 10) * 1000);
hard.unref();
const result = role === 'legit' ? await legit() : await attack();
console.log(JSON.stringify(result));
process.exit(0);
