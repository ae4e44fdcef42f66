// Draws the PWA icons (public/icons/*.png) and the favicon SVG: a blue speech bubble with three
// dots on a slate tile. Written by hand with a tiny PNG encoder (node:zlib) so that no image tool
// is needed; run `node tools/make-icons.mjs` after changing the drawing and commit the PNGs.
// Rule: the maskable icon keeps everything inside the central 80% circle (the safe zone), with
// the background running to the edges, or launchers will crop the bubble.
import { deflateSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'public');
const SLATE = [0x1f, 0x29, 0x37];
const BLUE = [0x60, 0xa5, 0xfa];

// CRC-32 as PNG chunks need it.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
/** rgba: (size, size, 4) bytes, row-major. */
function encodePng(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    Buffer.from(rgba.buffer, y * size * 4, size * 4).copy(raw, y * (size * 4 + 1) + 1);
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

// Shapes in a 512-unit design space; each returns true when the point is inside.
const roundRect = (x0, y0, x1, y1, r) => (x, y) => {
  const dx = Math.max(x0 + r - x, 0, x - (x1 - r));
  const dy = Math.max(y0 + r - y, 0, y - (y1 - r));
  return x >= x0 && x <= x1 && y >= y0 && y <= y1 && dx * dx + dy * dy <= r * r;
};
const circle = (cx, cy, r) => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
const triangle = (ax, ay, bx, by, cx, cy) => (x, y) => {
  const s = (px, py, qx, qy) => (qx - px) * (y - py) - (qy - py) * (x - px);
  const d1 = s(ax, ay, bx, by), d2 = s(bx, by, cx, cy), d3 = s(cx, cy, ax, ay);
  return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0));
};
const bubble = [roundRect(96, 140, 416, 350, 44), triangle(150, 340, 230, 340, 150, 410)];
const dots = [circle(196, 245, 22), circle(256, 245, 22), circle(316, 245, 22)];

/**
 * @param size pixels per side
 * @param opts.maskable full-bleed background and the drawing shrunk into the safe zone
 */
function draw(size, { maskable }) {
  const tile = maskable ? () => true : roundRect(0, 0, 512, 512, 96);
  const scale = maskable ? 0.72 : 1; // bubble spans 96..416 -> fits the 80% safe circle when shrunk
  const rgba = new Uint8Array(size * size * 4);
  const SS = 4; // 4x4 supersampling for smooth edges
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let a = 0, r = 0, g = 0, b = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const x = ((px + (sx + 0.5) / SS) / size) * 512;
          const y = ((py + (sy + 0.5) / SS) / size) * 512;
          if (!tile(x, y)) continue;
          const ux = 256 + (x - 256) / scale, uy = 256 + (y - 256) / scale;
          const inBubble = bubble.some((f) => f(ux, uy)) && !dots.some((f) => f(ux, uy));
          const c = inBubble ? BLUE : SLATE;
          r += c[0]; g += c[1]; b += c[2]; a += 1;
        }
      }
      const o = (py * size + px) * 4;
      if (a > 0) {
        rgba[o] = Math.round(r / a);
        rgba[o + 1] = Math.round(g / a);
        rgba[o + 2] = Math.round(b / a);
      }
      rgba[o + 3] = Math.round((a / (SS * SS)) * 255);
    }
  }
  return encodePng(size, rgba);
}

const icons = [
  ['icons/icon-192.png', 192, false],
  ['icons/icon-512.png', 512, false],
  ['icons/maskable-512.png', 512, true],
  ['icons/apple-touch-icon-180.png', 180, true],
];
for (const [name, size, maskable] of icons) {
  const file = join(OUT, name);
  mkdirSync(dirname(file), { recursive: true });
  const png = draw(size, { maskable });
  writeFileSync(file, png);
  console.log(`${name}: ${size}x${size}, ${png.length} bytes`);
}
writeFileSync(
  join(OUT, 'favicon.svg'),
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512"><rect width="512" height="512" rx="96" fill="#1f2937"/>` +
    `<path d="M140 140h232a44 44 0 0 1 44 44v122a44 44 0 0 1-44 44H230l-80 60v-60h-10a44 44 0 0 1-44-44V184a44 44 0 0 1 44-44z" fill="#60a5fa"/>` +
    `<circle cx="196" cy="245" r="22" fill="#1f2937"/><circle cx="256" cy="245" r="22" fill="#1f2937"/><circle cx="316" cy="245" r="22" fill="#1f2937"/></svg>\n`,
);
console.log('favicon.svg written');
