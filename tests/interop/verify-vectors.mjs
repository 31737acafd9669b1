#!/usr/bin/env node
// Independent verifier for MQTT signing test vectors (RFC 8785 JCS + Ed25519).
// Usage: node verify-vectors.mjs PATH/test-vectors.json
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import crypto from 'node:crypto';

// RFC 8785 JSON Canonicalization Scheme over the JSON.parse data model.
export function canonicalize(v) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new Error('non-finite number');
      return JSON.stringify(v); // ECMAScript Number::toString; -0 -> "0"
    case 'string': return JSON.stringify(v);
    case 'object':
      if (Array.isArray(v)) return '[' + v.map(canonicalize).join(',') + ']';
      // default sort compares UTF-16 code units, as RFC 8785 section 3.2.3 requires
      return '{' + Object.keys(v).sort()
        .map(k => JSON.stringify(k) + ':' + canonicalize(v[k])).join(',') + '}';
    default: throw new Error('unsupported type ' + typeof v);
  }
}

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function b64(s, what) {
  if (typeof s !== 'string' || !B64.test(s)) throw new Error(`${what} is not standard base64`);
  return Buffer.from(s, 'base64');
}

function check(vec) {
  if (!vec || typeof vec !== 'object') throw new Error('vector is not an object');
  if (typeof vec.valid !== 'boolean') throw new Error('"valid" is not a boolean');
  if (typeof vec.canonical !== 'string') throw new Error('"canonical" is not a string');
  if (!vec.message || typeof vec.message !== 'object' || Array.isArray(vec.message))
    throw new Error('"message" is not an object');
  const canon = canonicalize(vec.message);
  if (canon !== vec.canonical)
    throw new Error(`canonical mismatch: computed ${JSON.stringify(canon)}`);
  if (typeof vec.public_key !== 'string' || !vec.public_key.startsWith('ed25519:'))
    throw new Error('public_key does not start with "ed25519:"');
  const raw = b64(vec.public_key.slice(8), 'public_key');
  if (raw.length !== 32) throw new Error(`public key is ${raw.length} bytes, not 32`);
  const kid = crypto.createHash('sha256').update(raw).digest('hex').slice(0, 16);
  if (vec.key_id !== kid) throw new Error(`key_id ${JSON.stringify(vec.key_id)} != ${kid}`);
  const sig = b64(vec.signature, 'signature');
  let ok = false;
  if (sig.length === 64) {
    const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    ok = crypto.verify(null, Buffer.from(vec.canonical, 'utf8'), key, sig);
  }
  if (ok !== vec.valid)
    throw new Error(`signature ${ok ? 'verifies' : 'does not verify'} but valid=${vec.valid}`);
}

function main() {
  const path = process.argv[2];
  if (!path) { console.error('usage: node verify-vectors.mjs PATH/test-vectors.json'); process.exit(2); }
  let doc;
  try { doc = JSON.parse(readFileSync(path, 'utf8')); }
  catch (e) { console.error(`error: cannot read ${path}: ${e.message}`); process.exit(2); }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.vectors)) {
    console.error(`error: ${path}: top level must be an object with a "vectors" array`); process.exit(2);
  }
  let failed = 0;
  doc.vectors.forEach((vec, i) => {
    const name = vec && typeof vec.name === 'string' ? vec.name : `#${i}`;
    try { check(vec); console.log(`ok   ${name}`); }
    catch (e) { failed++; console.log(`FAIL ${name}: ${e.message}`); }
  });
  console.log(`${doc.vectors.length} vectors, ${failed} failed`);
  process.exit(failed === 0 && doc.vectors.length > 0 ? 0 : 1);
}
// Run only when executed directly (make-sample.mjs imports canonicalize).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  try { main(); } catch (e) { console.error(`error: ${e.message}`); process.exit(2); }
