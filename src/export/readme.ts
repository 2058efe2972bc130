import type { Manifest } from './manifest.ts';

/**
 * The package's README.md: what the model is, and two ready-to-run programs — Node.js
 * (onnxruntime-node + sharp) and Python (onnxruntime + Pillow + numpy) — that implement the
 * manifest's preprocessing and print the top-5 classes. The Node program makes the same sharp
 * calls as the studio's eval transform, so its tensors are the ones the model was validated on;
 * Pillow's bilinear filter differs from libvips' by rounding, so Python's input may differ by about
 * one 8-bit level in a few pixels.
 */

const nodeSnippet = (modelFile: string) => `\`\`\`js
// npm install onnxruntime-node sharp   ·   node predict.mjs image.jpg
import fs from 'node:fs';
import ort from 'onnxruntime-node';
import sharp from 'sharp';

const manifest = JSON.parse(fs.readFileSync(new URL('./manifest.json', import.meta.url), 'utf8'));
const p = manifest.preprocessing;

async function preprocess(file) {
  const { width, height } = p.resize;
  const { data } = await sharp(file, { pages: 1 })
    .autoOrient()
    .resize(width, height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
    .flatten({ background: '#000000' })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const plane = width * height;
  const x = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) x[c * plane + i] = (data[i * 3 + c] * p.scale - p.mean[c]) / p.std[c];
  }
  return new ort.Tensor('float32', x, [1, 3, height, width]);
}

const session = await ort.InferenceSession.create(new URL('./${modelFile}', import.meta.url).pathname);
const { probabilities } = await session.run({ input: await preprocess(process.argv[2]) });
const top5 = [...probabilities.data].map((score, i) => ({ label: manifest.labels[i], score }))
  .sort((a, b) => b.score - a.score).slice(0, 5);
for (const { label, score } of top5) console.log(\`\${label}\\t\${score.toFixed(4)}\`);
\`\`\``;

const pythonSnippet = (modelFile: string) => `\`\`\`python
# pip install onnxruntime pillow numpy   ·   python predict.py image.jpg
import json, sys
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

manifest = json.load(open("manifest.json"))
p = manifest["preprocessing"]

def preprocess(path):
    img = ImageOps.exif_transpose(Image.open(path))
    img = img.convert("RGBA")
    black = Image.new("RGBA", img.size, (0, 0, 0, 255))
    img = Image.alpha_composite(black, img).convert("RGB")
    img = img.resize((p["resize"]["width"], p["resize"]["height"]), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) * p["scale"]
    x = (x - np.array(p["mean"], dtype=np.float32)) / np.array(p["std"], dtype=np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)

session = ort.InferenceSession("${modelFile}", providers=["CPUExecutionProvider"])
probs = session.run(["probabilities"], {"input": preprocess(sys.argv[1])})[0][0]
for i in np.argsort(-probs)[:5]:
    print(f"{manifest['labels'][i]}\\t{probs[i]:.4f}")
\`\`\``;

const fmtShape = (shape: (number | string)[]) => `[${shape.join(', ')}]`;

export function readmeText(m: Manifest): string {
  const models = m.files.filter((f) => f.role === 'model');
  const main = models.find((f) => f.variant === 'fp32') ?? models[0];
  const modelFile = main?.name ?? 'model.onnx';
  const r = m.preprocessing.resize;
  const lines = [
    `# ${m.name}`,
    '',
    `An image ${m.task} model with ${m.labels.length} classes, exported by AI Studio as ONNX (opset ${m.opset}).`,
    `\`manifest.json\` is the contract: inputs, outputs, preprocessing, labels, metrics and the sha256 of every file.`,
    '',
    '## Files',
    '',
    '| file | variant | bytes | sha256 |',
    '|---|---|---|---|',
    ...m.files.map((f) => `| ${f.name} | ${f.variant ?? ''} | ${f.size_bytes} | \`${f.sha256}\` |`),
    '',
    'Every variant takes the same input and gives the same outputs; `SHA256SUMS` checks them all (`sha256sum -c SHA256SUMS`).',
    '',
    '## Input and output',
    '',
    ...m.inputs.map((t) => `- input \`${t.name}\`: ${t.dtype} ${fmtShape(t.shape)} — ${t.description}`),
    ...m.outputs.map((t) => `- output \`${t.name}\`: ${t.dtype} ${fmtShape(t.shape)} — ${t.description}`),
    '',
    '## Preprocessing',
    '',
    `1. Decode the image, apply its EXIF orientation, flatten any alpha onto black, convert to 8-bit sRGB RGB.`,
    `2. Resize to ${r.width}×${r.height} ignoring the aspect ratio (${r.mode}), ${r.interpolation}${r.antialias ? ', antialiased when shrinking' : ''}.`,
    `3. Per channel c: (v × ${m.preprocessing.scale} − mean[c]) / std[c], mean = ${JSON.stringify(m.preprocessing.mean)}, std = ${JSON.stringify(m.preprocessing.std)}.`,
    `4. Lay out as ${m.preprocessing.layout} float32, batch first.`,
    '',
    '## Node.js',
    '',
    nodeSnippet(modelFile),
    '',
    '## Python',
    '',
    pythonSnippet(modelFile),
    '',
    'Pillow\'s bilinear filter rounds differently from libvips\', so the Python input can differ from the Node.js one by about one 8-bit level in a few pixels.',
    '',
  ];
  return lines.join('\n');
}
