// ROC and precision-recall curves drawn to PNG with node's zlib: a plot frame, a light grid at
// 0.2 steps, the chance line for ROC, and one colored polyline per curve. No text: the figures'
// legends (curve order and colors) go in the JSON results next to them.
import { deflateSync } from 'node:zlib';
import type { Curve } from './auc';

export const CURVE_COLORS: [number, number, number][] = [
  [31, 119, 180], [214, 39, 40], [44, 160, 44], [255, 127, 14], [148, 103, 189], [140, 86, 75],
];

class Canvas {
  readonly pixels: Uint8Array;
  constructor(readonly width: number, readonly height: number) {
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }
  set(x: number, y: number, c: [number, number, number]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (Math.round(y) * this.width + Math.round(x)) * 3;
    this.pixels[o] = c[0];
    this.pixels[o + 1] = c[1];
    this.pixels[o + 2] = c[2];
  }
  /** Line with a square pen of the given width (DDA). */
  line(x0: number, y0: number, x1: number, y1: number, c: [number, number, number], pen = 1): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const r = Math.floor(pen / 2);
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      for (let dx = -r; dx <= r; dx++) for (let dy = -r; dy <= r; dy++) this.set(x + dx, y + dy, c);
    }
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** 8-bit RGB PNG (filter 0 on every row). */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

export interface PlotOptions {
  size?: number;
  /** Draw the y = x chance line (ROC). */
  diagonal?: boolean;
}

/** Plot area: margin pixels on each side; (0,0) bottom-left, (1,1) top-right. */
export function plotCurves(curves: Curve[], opts: PlotOptions = {}): Buffer {
  const size = opts.size ?? 400;
  const margin = Math.round(size * 0.08);
  const span = size - 2 * margin;
  const cv = new Canvas(size, size);
  const px = (x: number) => margin + x * span;
  const py = (y: number) => size - margin - y * span;
  const grid: [number, number, number] = [225, 225, 225];
  for (let g = 0.2; g < 1; g += 0.2) {
    cv.line(px(g), py(0), px(g), py(1), grid);
    cv.line(px(0), py(g), px(1), py(g), grid);
  }
  if (opts.diagonal) cv.line(px(0), py(0), px(1), py(1), [160, 160, 160]);
  const frame: [number, number, number] = [0, 0, 0];
  cv.line(px(0), py(0), px(1), py(0), frame);
  cv.line(px(0), py(1), px(1), py(1), frame);
  cv.line(px(0), py(0), px(0), py(1), frame);
  cv.line(px(1), py(0), px(1), py(1), frame);
  curves.forEach((c, k) => {
    const color = CURVE_COLORS[k % CURVE_COLORS.length];
    for (let i = 1; i < c.x.length; i++) cv.line(px(c.x[i - 1]), py(c.y[i - 1]), px(c.x[i]), py(c.y[i]), color, 2);
  });
  return encodePng(size, size, cv.pixels);
}
