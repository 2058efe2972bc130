import type { Manifest } from './manifest.ts';

/**
 * The package's README.md: what the model is, and two ready-to-run programs — Node.js
 * (onnxruntime-node + sharp) and Python (onnxruntime + Pillow + numpy) — that implement the
 * manifest's preprocessing and print the answer its postprocessing describes (the top-5 classes;
 * the labels at or above their thresholds; the values in their units). The Node program makes the same sharp
 * calls as the studio's eval transform, so its tensors are the ones the model was validated on;
 * Pillow's bilinear filter differs from libvips' by rounding, so Python's input may differ by about
 * one 8-bit level in a few pixels.
 */

const nodeSnippet = (modelFile: string, post: PostSnippets) => `\`\`\`js
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
${post.node}
\`\`\``;

const pythonSnippet = (modelFile: string, post: PostSnippets) => `\`\`\`python
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
${post.python}
\`\`\``;

/** The post-processing part of the two programs, by the manifest's postprocessing type. */
interface PostSnippets {
  node: string;
  python: string;
  /** What the model is, after "An image model": "with 4 classes". */
  what: string;
  /** The README's own words on reading the outputs. */
  notes: string[];
}

const str = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);

/**
 * The manifest's postprocessing contract (src/export/manifest.ts) says how outputs are read; each
 * type gets the few lines that turn the primary output into an answer. A type this file does not
 * know (a task added later) gets its output printed as it is.
 */
function postSnippets(m: Manifest): PostSnippets {
  const pp = m.postprocessing as Record<string, unknown>;
  const n = m.labels.length;
  const primary = str(pp.scores_output, str(pp.values_output, m.outputs.find((o) => o.name !== 'logits')?.name ?? 'logits'));
  const js = JSON.stringify(primary);
  switch (pp.type) {
    case 'softmax':
      return {
        what: `classification model with ${n} classes`,
        notes: ['`probabilities` is the softmax over the classes; the best is the answer.'],
        node: `const { ${primary}: probabilities } = await session.run({ input: await preprocess(process.argv[2]) });
const top5 = [...probabilities.data].map((score, i) => ({ label: manifest.labels[i], score }))
  .sort((a, b) => b.score - a.score).slice(0, 5);
for (const { label, score } of top5) console.log(\`\${label}\\t\${score.toFixed(4)}\`);`,
        python: `probs = session.run([${js}], {"input": preprocess(sys.argv[1])})[0][0]
for i in np.argsort(-probs)[:5]:
    print(f"{manifest['labels'][i]}\\t{probs[i]:.4f}")`,
      };
    case 'multilabel':
      return {
        what: `multi-label model over ${n} labels (any number of them per image)`,
        notes: [
          `\`${primary}\` holds one independent sigmoid score per label. A label is present when its score is at or above its threshold in \`postprocessing.thresholds\` (the threshold that maximised that label's F1 on the validation images; 0.5 where a label had no positive there).`,
        ],
        node: `const out = await session.run({ input: await preprocess(process.argv[2]) });
const scores = out[${js}].data;
const thresholds = manifest.postprocessing.thresholds;
// every label at or above its threshold, best first
const present = manifest.labels.map((label, i) => ({ label, score: scores[i] }))
  .filter(({ label, score }) => score >= (thresholds[label] ?? 0.5))
  .sort((a, b) => b.score - a.score);
for (const { label, score } of present) console.log(\`\${label}\\t\${score.toFixed(4)}\`);`,
        python: `scores = session.run([${js}], {"input": preprocess(sys.argv[1])})[0][0]
thresholds = manifest["postprocessing"]["thresholds"]
# every label at or above its threshold, best first
present = [i for i, label in enumerate(manifest["labels"]) if scores[i] >= thresholds.get(label, 0.5)]
for i in sorted(present, key=lambda i: -scores[i]):
    print(f"{manifest['labels'][i]}\\t{scores[i]:.4f}")`,
      };
    case 'regression':
      return {
        what: `regression model predicting ${n} value${n === 1 ? '' : 's'} (${m.labels.join(', ')})`,
        notes: [`\`${primary}\` holds the predicted values in the targets' own units (the training standardisation is undone inside the model); index i is \`postprocessing.targets[i]\`.`],
        node: `const out = await session.run({ input: await preprocess(process.argv[2]) });
const values = out[${js}].data;
manifest.postprocessing.targets.forEach((t, i) => console.log(\`\${t.name}\\t\${values[i]}\`));`,
        python: `values = session.run([${js}], {"input": preprocess(sys.argv[1])})[0][0]
for i, t in enumerate(manifest["postprocessing"]["targets"]):
    print(f"{t['name']}\\t{float(values[i])!r}")`,
      };
    default:
      return {
        what: `${m.task} model with ${n} outputs`,
        notes: [`Read \`${primary}\` as \`postprocessing\` describes.`],
        node: `const out = await session.run({ input: await preprocess(process.argv[2]) });
const values = out[${js}].data;
manifest.labels.forEach((name, i) => console.log(\`\${name}\\t\${values[i]}\`));`,
        python: `values = session.run([${js}], {"input": preprocess(sys.argv[1])})[0][0]
for i, name in enumerate(manifest["labels"]):
    print(f"{name}\\t{float(values[i])!r}")`,
      };
  }
}

const fmtShape = (shape: (number | string)[]) => `[${shape.join(', ')}]`;

export function readmeText(m: Manifest): string {
  const models = m.files.filter((f) => f.role === 'model');
  const main = models.find((f) => f.variant === 'fp32') ?? models[0];
  const modelFile = main?.name ?? 'model.onnx';
  const r = m.preprocessing.resize;
  const post = postSnippets(m);
  const lines = [
    `# ${m.name}`,
    '',
    `An image ${post.what}, exported by AI Studio as ONNX (opset ${m.opset}).`,
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
    ...post.notes,
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
    nodeSnippet(modelFile, post),
    '',
    '## Python',
    '',
    pythonSnippet(modelFile, post),
    '',
    'Pillow\'s bilinear filter rounds differently from libvips\', so the Python input can differ from the Node.js one by about one 8-bit level in a few pixels.',
    '',
  ];
  return lines.join('\n');
}
