import t from 'tap';
import { createHash } from 'node:crypto';
import { decodeBase64, encodeBase64 } from '../../../src/core/formats/base64.js';
import { sha256Hex, sha256HexAsync } from '../../../src/core/formats/sha256.js';

t.test('base64 matches Node for every length 0..300 and large buffers, and rejects garbage', async (t) => {
  for (let n = 0; n <= 300; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    const text = encodeBase64(bytes);
    t.equal(text, Buffer.from(bytes).toString('base64'), `length ${n}`);
    t.same(decodeBase64(text), bytes);
  }
  const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919) & 255);
  t.equal(encodeBase64(big), Buffer.from(big).toString('base64'));
  for (const bad of ['abc', 'ab!=', '====', 'a=bc', 'ab=c', 'YWJj\n'])
    t.equal(decodeBase64(bad), undefined, `"${bad}" rejected`);
});

t.test('sha256 matches node:crypto, including the padding boundaries', async (t) => {
  t.equal(sha256Hex(new Uint8Array()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.equal(
    sha256Hex(new TextEncoder().encode('abc')),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
  for (const n of [55, 56, 63, 64, 65, 119, 120, 1000, 65537]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31) & 255);
    t.equal(sha256Hex(bytes), createHash('sha256').update(bytes).digest('hex'), `length ${n}`);
  }
});

t.test('sha256HexAsync (WebCrypto) and sha256Hex (plain JS) give the same digest', async (t) => {
  for (const n of [0, 3, 55, 64, 1000]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);
    t.equal(await sha256HexAsync(bytes), sha256Hex(bytes), `length ${n}`);
    t.equal(await sha256HexAsync(bytes.buffer), sha256Hex(bytes), `length ${n}, ArrayBuffer`);
  }
});
