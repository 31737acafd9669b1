#!/usr/bin/env node
// Independent admin client for the edge-gate community protocol v2, written from docs/ alone
// (docs/protocol.md, docs/asyncapi.yaml, docs/schemas/, docs/protocol/test-vectors.json, README.md).
// Usage: node admin-client.mjs --broker URL --prefix P --community C --gate G --key admin.pem
//          --gates gates.json --model-id M --version N [--timeout 30]
//        node admin-client.mjs --check-vectors [--vectors PATH]
import crypto from 'node:crypto';
import fs from 'node:fs';
import mqtt from 'mqtt';

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
let finished = false;
function finish(code, obj) {
  if (finished) return;
  finished = true;
  out(obj);
  process.exit(code);
}
const fail = (error) => finish(1, { ok: false, error });

// ---- RFC 8785 (JCS). JS numbers and strings already serialise the way JCS says (ECMAScript rules);
// members are sorted by UTF-16 code units, which is what Array.prototype.sort does for strings.
export function jcs(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('no JCS form: non-finite number');
    return String(v); // String(-0) === "0", String(1e-7) === "1e-7", String(3.0) === "3"
  }
  if (Array.isArray(v)) return '[' + v.map(jcs).join(',') + ']';
  if (typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + jcs(v[k])).join(',') + '}';
  }
  throw new Error(`no JCS form: ${typeof v}`);
}

// ---- keys and signatures (§3)
const sha256hex = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const keyIdOf = (raw) => sha256hex(raw).slice(0, 16);
const rawOfKey = (keyObj) => Buffer.from(keyObj.export({ format: 'jwk' }).x, 'base64url');
function publicKeyFromText(text) {
  if (typeof text !== 'string' || !text.startsWith('ed25519:')) throw new Error(`not an ed25519: key: ${text}`);
  const raw = Buffer.from(text.slice('ed25519:'.length), 'base64');
  if (raw.length !== 32) throw new Error(`public key is not 32 bytes: ${text}`);
  const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  return { key, keyId: keyIdOf(raw) };
}
function sign(msg, privateKey, keyId) {
  const { signature: _drop, ...body } = msg;
  const value = crypto.sign(null, Buffer.from(jcs(body), 'utf8'), privateKey).toString('base64');
  return { ...body, signature: { alg: 'ed25519', key_id: keyId, value } };
}
// keys: Map key_id -> KeyObject (the keys trusted for that sender)
function verify(msg, keys) {
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return false;
  const s = msg.signature;
  if (!s || s.alg !== 'ed25519' || typeof s.value !== 'string' || !keys.has(s.key_id)) return false;
  const { signature: _drop, ...body } = msg;
  try {
    return crypto.verify(null, Buffer.from(jcs(body), 'utf8'), keys.get(s.key_id), Buffer.from(s.value, 'base64'));
  } catch { return false; }
}

// ---- self-check against docs/protocol/test-vectors.json
function checkVectors(path) {
  const doc = JSON.parse(fs.readFileSync(path, 'utf8'));
  const problems = [];
  for (const v of doc.vectors) {
    const { key, keyId } = publicKeyFromText(v.public_key);
    if (keyId !== v.key_id) problems.push(`${v.name}: key_id ${keyId} != ${v.key_id}`);
    if (jcs(v.message) !== v.canonical) problems.push(`${v.name}: canonical form differs`);
    const msg = { ...v.message, signature: { alg: 'ed25519', key_id: v.key_id, value: v.signature } };
    if (verify(msg, new Map([[v.key_id, key]])) !== v.valid) problems.push(`${v.name}: verify != ${v.valid}`);
  }
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519'); // sign/verify round trip
  const id = keyIdOf(rawOfKey(publicKey));
  const rt = sign({ n: 1e-7, s: 'Node 节点 😀' }, privateKey, id);
  if (!verify(JSON.parse(JSON.stringify(rt)), new Map([[id, publicKey]]))) problems.push('round trip failed');
  return { count: doc.vectors.length, problems };
}

// ---- arguments
const USAGE = 'usage: admin-client.mjs --broker URL --prefix P --community C --gate G --key admin.pem '
  + '--gates gates.json --model-id M --version N [--timeout S] | --check-vectors [--vectors PATH]';
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--check-vectors') { args['check-vectors'] = true; continue; }
  if (!a.startsWith('--') || i + 1 >= process.argv.length) finish(2, { ok: false, error: `bad argument ${a}; ${USAGE}` });
  args[a.slice(2)] = process.argv[++i];
}
const vectorsPath = args.vectors ?? new URL('../../docs/protocol/test-vectors.json', import.meta.url);
let vec;
try { vec = checkVectors(vectorsPath); } catch (e) { fail(`test vectors: ${e.message}`); }
if (vec.problems.length) fail(`test vectors: ${vec.problems.join('; ')}`);
if (args['check-vectors']) finish(0, { step: 'check-vectors', ok: true, vectors: vec.count });

const LEVEL = /^[A-Za-z0-9_.-]{1,64}$/;
const bad = (why) => finish(2, { ok: false, error: `${why}; ${USAGE}` });
for (const k of ['broker', 'community', 'gate', 'key', 'gates', 'model-id', 'version']) if (!args[k]) bad(`missing --${k}`);
const prefix = args.prefix ?? 'edge-gate';
const { community, gate } = args;
const N = Number(args.version);
const timeoutS = Number(args.timeout ?? 30);
if (!LEVEL.test(community) || !LEVEL.test(gate) || gate === 'whitelist') bad('bad --community or --gate');
if (!prefix.split('/').every((l) => l && !/[+#]/.test(l))) bad('bad --prefix');
if (!Number.isSafeInteger(N) || N < 1) bad('--version must be an integer >= 1');
if (!(timeoutS > 0)) bad('--timeout must be > 0');
let adminKey, adminKeyId, gateKeys;
try {
  adminKey = crypto.createPrivateKey(fs.readFileSync(args.key));
  if (adminKey.asymmetricKeyType !== 'ed25519') throw new Error('--key is not an Ed25519 key');
  adminKeyId = keyIdOf(rawOfKey(crypto.createPublicKey(adminKey)));
  const entry = JSON.parse(fs.readFileSync(args.gates, 'utf8')).gates.find((g) => g.gate_id === gate);
  if (!entry) throw new Error(`gate ${gate} is not in ${args.gates}`);
  const { key, keyId } = publicKeyFromText(entry.public_key);
  gateKeys = new Map([[keyId, key]]);
} catch (e) { bad(e.message); }

// ---- messages
const base = `${prefix}/${community}`;
const topics = { delta: `${base}/whitelist/delta`, current: `${base}/whitelist/current`,
  acks: `${base}/+/whitelist/ack`, state: `${base}/${gate}/state` };
function embedding(dim = 128) {
  const v = Array.from({ length: dim }, () => crypto.randomInt(-1e6, 1e6) / 1e6);
  const norm = Math.hypot(...v) || 1;
  const view = new DataView(new ArrayBuffer(dim * 4));
  v.forEach((x, i) => view.setFloat32(i * 4, x / norm, true));
  return Buffer.from(view.buffer).toString('base64');
}
function delta(version, changes) {
  const now = Date.now();
  return { schema: 'edge-gate/whitelist-delta/2', community, gate: null, version, base_version: version - 1,
    issued_at: new Date(now).toISOString(), expires_at: new Date(now + 24 * 3600e3).toISOString(),
    upserts: [], patches: [], deletes: [], ...changes };
}

// ---- MQTT
let waiting = 'connecting to the broker';
const deadline = setTimeout(() => fail(`timeout after ${timeoutS}s waiting for ${waiting}`), timeoutS * 1000);
const inbox = [];
let wake = () => {};
const client = mqtt.connect(args.broker, { protocolVersion: 5, clean: true, reconnectPeriod: 1000,
  clientId: `edge-gate-interop-${crypto.randomBytes(4).toString('hex')}` });
client.on('error', (e) => fail(`mqtt: ${e.message}`));
client.on('message', (topic, payload, packet) => { inbox.push({ topic, payload, retain: packet.retain }); wake(); });
async function next(what, test) { // first message for which test() returns a value
  waiting = what;
  for (;;) {
    while (inbox.length) { const r = test(inbox.shift()); if (r) return r; }
    await new Promise((resolve) => { wake = resolve; });
  }
}
const parse = (payload) => { try { return JSON.parse(payload.toString('utf8')); } catch { return undefined; } };

async function push(step, msg) {
  const signed = sign(msg, adminKey, adminKeyId);
  const payload = Buffer.from(JSON.stringify(signed), 'utf8'); // wire order is free: the gate re-canonicalises
  const digest = sha256hex(payload);
  const expiry = Math.max(1, Math.floor((Date.parse(msg.expires_at) - Date.now()) / 1000));
  waiting = `publishing ${step}`;
  await client.publishAsync(topics.delta, payload, { qos: 1, retain: true, properties: { messageExpiryInterval: expiry } });
  await client.publishAsync(topics.current, JSON.stringify({ schema: 'edge-gate/whitelist-current/2',
    version: msg.version, issued_at: msg.issued_at }), { qos: 1, retain: true });
  const ignored = { unverified: 0, unmatched: 0 };
  const ack = await next(`the ${step} ack (version ${msg.version}, push_digest ${digest})`, ({ topic, payload: p }) => {
    if (!topic.endsWith('/whitelist/ack')) return null;
    const m = parse(p);
    if (!m || m.gate !== gate || topic !== `${base}/${gate}/whitelist/ack` || !verify(m, gateKeys)) { ignored.unverified++; return null; }
    const matches = m.schema === 'edge-gate/whitelist-ack/2' && m.community === community
      && m.kind === 'delta' && m.version === msg.version && m.push_digest === digest;
    if (!matches) { ignored.unmatched++; return null; }
    return m;
  });
  const line = { step, version: msg.version, base_version: msg.base_version, status: ack.status, code: ack.code,
    digest, current_version: ack.current_version, counts: ack.counts, errors: ack.errors ?? [], ignored };
  out(line);
  if (ack.status !== 'applied') throw new Error(`${step} ${ack.status} (${ack.code}): ${ack.message}`);
  if ((ack.errors ?? []).length) throw new Error(`${step} applied with per-entry errors: ${JSON.stringify(ack.errors)}`);
  if (ack.current_version !== msg.version) throw new Error(`${step}: current_version ${ack.current_version} != ${msg.version}`);
}

async function main() {
  await new Promise((resolve) => client.once('connect', resolve));
  out({ step: 'connect', broker: args.broker, admin_key_id: adminKeyId, vectors: vec.count });
  waiting = 'subscribing';
  await client.subscribeAsync(topics.acks, { qos: 1 });
  await push('delta', delta(N, { upserts: [{
    id: 'NODE1', name: 'Node Client 节点', kind: 'resident', status: 'active', care_watch_hours: 1e-7,
    valid_until: '2099-12-31T23:59:59Z', templates: { model_id: args['model-id'], embeddings: [embedding()] },
  }] }));
  await push('patch', delta(N + 1, { patches: [{ id: 'NODE1', status: 'suspended' }] }));

  await client.subscribeAsync(topics.state, { qos: 1 });
  const seen = { unverified: 0, stale: 0 };
  const state = await next(`a signed state with whitelist.version ${N + 1}`, ({ topic, payload }) => {
    if (topic !== topics.state) return null;
    const m = parse(payload);
    if (!m || m.schema !== 'edge-gate/state/2' || m.gate !== gate || m.community !== community || !verify(m, gateKeys)) { seen.unverified++; return null; }
    // the wire form must hold integers: JSON.parse turns 5.0 into 5, so look at the text too
    const versions = [...payload.toString('utf8').matchAll(/"version"\s*:\s*([-+.\deE]+)/g)].map((x) => x[1]);
    if (!Number.isInteger(m.whitelist?.version) || versions.some((t) => !/^-?\d+$/.test(t))) throw new Error(`state whitelist.version is not an integer: ${versions}`);
    if (m.whitelist.version !== N + 1) { seen.stale++; return null; }
    return m;
  });
  out({ step: 'state', version: state.whitelist.version, persons: state.whitelist.persons, need_snapshot: state.whitelist.need_snapshot, ts: state.ts, ignored: seen });
  await client.endAsync(); // still under the deadline timer
  clearTimeout(deadline);
  finish(0, { ok: true });
}
main().catch((e) => fail(e.message));
