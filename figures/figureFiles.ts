// Figures as files: the SVG a chart renders to, and beside it a PNG rasterized by resvg (a
// prebuilt binary shipped through npm: no browser, no canvas, no native build). Text is drawn
// with the machine's fonts; the SVG keeps it as text whatever fonts there are.
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from '../sinks/parquet';

/** A written figure: paths relative to the output folder, and the PNG's pixel size. */
export interface FigureFiles {
  svg: string;
  png: string;
  width: number;
  height: number;
}

// Twice the SVG's size: its 12-13 px text stays sharp when the PNG is viewed alone or printed.
const SCALE = 2;

// vega sizes a chart with text widths estimated without a canvas, generously: titles and
// legends can leave a wide white band on the right. The PNG is cut PAD pixels past the last ink.
const PAD = 12;

const options = () => ({
  background: 'white',
  fitTo: { mode: 'zoom' as const, value: SCALE },
  // The charts ask for Helvetica/Arial; Liberation Sans has Arial's metrics, DejaVu Sans is the usual fallback.
  font: { loadSystemFonts: true, defaultFontFamily: 'Liberation Sans', sansSerifFamily: 'Liberation Sans' },
});

/** The pixel size up to the last column and row that are not white (RGBA pixels). */
function inkExtent(px: Buffer, width: number, height: number): { right: number; bottom: number } {
  let right = 0;
  let bottom = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (px[o] < 250 || px[o + 1] < 250 || px[o + 2] < 250) {
        if (x + 1 > right) right = x + 1;
        bottom = y + 1;
      }
    }
  }
  return { right, bottom };
}

/** An SVG string as PNG bytes on a white background, SCALE times its size, cut after its last ink. */
export function svgToPng(svg: string): { png: Buffer; width: number; height: number } {
  const full = new Resvg(svg, options()).render();
  const ink = inkExtent(full.pixels, full.width, full.height);
  const width = Math.min(full.width, ink.right + PAD);
  const height = Math.min(full.height, ink.bottom + PAD);
  if (width === full.width && height === full.height) return { png: full.asPng(), width, height };
  const cut = new Resvg(svg, options());
  const box = cut.getBBox();
  if (!box) return { png: full.asPng(), width: full.width, height: full.height };
  Object.assign(box, { x: 0, y: 0, width: width / SCALE, height: height / SCALE });
  cut.cropByBBox(box);
  const img = cut.render();
  return { png: img.asPng(), width: img.width, height: img.height };
}

/** Writes `<dir>/<base>.svg` and `<dir>/<base>.png`, each atomically. */
export function writeFigure(dir: string, base: string, svg: string): FigureFiles {
  const { png, width, height } = svgToPng(svg);
  writeFileAtomic(join(dir, `${base}.svg`), new TextEncoder().encode(svg));
  writeFileAtomic(join(dir, `${base}.png`), png);
  return { svg: `${base}.svg`, png: `${base}.png`, width, height };
}
