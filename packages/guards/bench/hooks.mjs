// The guards' own cost, without sockets: the accept + close hooks per connection and the frame hook per
// message, called directly on a stand-in connection, timed in CPU time (steady on a shared machine).
const { createGuards } = await import(process.env.SOCK_GUARDS_DIST ?? '../dist/index.js');

function cpuNs(fn, count) {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) fn(i);
  const d = process.cpuUsage(before);
  return ((d.user + d.system) * 1000) / count;
}

function fakeConn(address) {
  return {
    id: 1,
    remoteAddress: address,
    remotePort: 1,
    remoteFamily: 'IPv4',
    localAddress: '127.0.0.1',
    localPort: 1,
    socketAddress: address,
    socketPort: 1,
    transport: 'tcp',
    openedAt: Date.now(),
    stats: { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 },
    locals: new Map(),
    closing: false,
    signal: undefined,
    pauseReading() {},
    resumeReading() {},
    reject() {},
    report() {},
  };
}

export function runHooks({ log = () => {} } = {}) {
  const deny = [];
  for (let i = 0; i < 10_000; i++) deny.push(`10.${(i >> 8) & 255}.${i & 255}.0/24`);
  const high = { rate: 1e9, burst: 1e9 };
  const policies = {
    defaults: {},
    'every guard': {
      ip: { deny },
      connections: { max: 1e6, perKey: 1e6 },
      rates: {
        connections: high,
        messages: { perConnection: high, perKey: high },
        bytes: { perConnection: high, perKey: high },
      },
    },
  };
  const rows = [];
  const frame = Buffer.alloc(1024);
  for (const [name, policy] of Object.entries(policies)) {
    const guards = createGuards(policy);
    const p = guards.plugin;
    // Enough distinct sources that the default connection rate (burst 20 per source) never rejects.
    const addresses = Array.from({ length: 65536 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const info = { reason: 'closed', rejectedEarly: false };
    const once = (i) => {
      const conn = fakeConn(addresses[i & 65535]);
      p.accept(conn);
      p.close(conn, info);
    };
    cpuNs(once, 20_000);
    let acceptNs = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 3; r++) acceptNs = Math.min(acceptNs, cpuNs(once, 100_000));
    const conn = fakeConn('192.0.2.1');
    p.accept(conn);
    let frameNs = 0;
    if (p.frame) {
      cpuNs(() => p.frame(conn, frame), 100_000);
      frameNs = Number.POSITIVE_INFINITY;
      for (let r = 0; r < 3; r++)
        frameNs = Math.min(
          frameNs,
          cpuNs(() => p.frame(conn, frame), 500_000),
        );
    }
    p.close(conn, info);
    guards.close();
    rows.push({ policy: name, acceptCloseNs: acceptNs, frameNs });
    log(`  hooks ${name}: accept+close ${acceptNs.toFixed(0)} ns, frame ${frameNs.toFixed(0)} ns`);
  }
  return rows;
}
