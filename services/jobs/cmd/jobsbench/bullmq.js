// BullMQ side of jobsbench: the same phases as the Go side.
// usage: node bullmq.js <redisPort> <n> <concurrency> <payloadBytes> <latencyJobs> <rate> <removeOnComplete: true|false>
const { Queue, Worker } = require('bullmq');
const [port, n, conc, size, latN, rate] = process.argv.slice(2, 8).map(Number);
// false: BullMQ's default, completed jobs are kept (as our queue keeps every finished job's record).
const opts = { removeOnComplete: process.argv[8] === 'true' };
const connection = { host: '127.0.0.1', port };
const payload = 'x'.repeat(size);
// performance.now() is monotonic and sub-millisecond, as Go's clock is on
// the other side (Date.now() counted whole milliseconds: one run printed a
// latency ratio of 178x).
const now = () => performance.now();
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
(async () => {
  const q = new Queue('bench', { connection });
  await q.obliterate({ force: true }).catch(() => {});
  // Enqueue: conc callers, no worker running.
  let next = 0;
  let t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) { next++; await q.add('job', { payload, t: now() }, opts); }
  }));
  const enqSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  // Process: a worker of the same concurrency drains them.
  let done = 0;
  let lat = null;
  let resolveDone;
  const allDone = new Promise(r => (resolveDone = r));
  t0 = process.hrtime.bigint();
  // A job counts once BullMQ has recorded it completed (the 'completed'
  // event follows the move to the completed set), as the Go side counts
  // completions recorded durably, not handler entries.
  const w = new Worker('bench', async job => {
    if (lat) lat.push(now() - job.data.t);
  }, { connection, concurrency: conc });
  w.on('completed', () => {
    done++;
    if (done === n || done === n + latN) resolveDone();
  });
  await allDone;
  const procSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  // Latency: enqueue-to-start at a paced rate.
  lat = [];
  const all2 = new Promise(r => (resolveDone = r));
  const every = 1000 / rate;
  const start = now();
  for (let i = 0; i < latN; i++) {
    const due = start + i * every;
    const wait = due - now();
    if (wait > 0) await new Promise(r => setTimeout(r, wait));
    q.add('job', { payload, t: now() }, opts);
  }
  await all2;
  console.log(JSON.stringify({ enqueuePerSec: n / enqSecs, processPerSec: n / procSecs, p50: pct(lat, 0.5), p99: pct(lat, 0.99) }));
  await w.close(); await q.close();
  process.exit(0);
})().catch(e => { console.error(e); process.exit(1); });
