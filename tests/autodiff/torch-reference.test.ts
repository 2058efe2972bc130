import { describe, expect, it } from 'vitest';
import { backward, decomposeBatchNormForTraining } from '../../src/autodiff/index.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { type Attr, type TensorData, attr, f32 } from '../../src/onnx/ir.ts';
import { createSession } from '../../src/runtime/session.ts';
import { OpFixture, type RefTensor, loadFixture, opFixtureFiles, relError, toTensor } from './torch-reference.ts';

/**
 * PyTorch reference cases: each fixture op is rebuilt as an ONNX graph, differentiated with
 * `backward` seeded with the fixture's output gradient, and every value compared with PyTorch's.
 */

const TOL = 1e-4;
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'epsilon']);

function onnxAttrs(f: OpFixture): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const [k, v] of Object.entries(f.attrs)) {
    if (Array.isArray(v)) out[k] = attr.ints(v);
    else if (typeof v === 'string') out[k] = attr.string(v);
    else out[k] = FLOAT_ATTRS.has(k) ? attr.float(v) : attr.int(v);
  }
  return out;
}

interface Built {
  b: GraphBuilder;
  output: string;
  /** extra values to compare: name in graph → reference */
  extra: [string, RefTensor][];
}

const c32 = (b: GraphBuilder, v: number) => b.initializer(b.fresh('c'), f32([], [v]));

/** The fixture's computation on graph inputs named as in the fixture. */
function forward(f: OpFixture): Built {
  const b = new GraphBuilder();
  const named = { ...f.inputs, ...f.params };
  for (const [k, t] of Object.entries(named)) b.input(k, 'float32', t.shape);
  const X = 'X';
  const params = Object.keys(f.params);
  switch (f.case) {
    case 'relu6':
      return { b, output: b.op('Clip', [X, c32(b, 0), c32(b, 6)]), extra: [] };
    case 'silu':
      return { b, output: b.op('Mul', [X, b.op('Sigmoid', [X])]), extra: [] };
    case 'resize_bilinear_x2':
      return {
        b,
        output: b.op('Resize', [X, '', b.initializer('scales', f32([4], [1, 1, 2, 2]))], {
          mode: attr.string('linear'),
          coordinate_transformation_mode: attr.string('half_pixel'),
        }),
        extra: [],
      };
    case 'bce_with_logits': {
      // mean(max(x,0) − x·t + log(1 + e^−|x|)), the stable form PyTorch uses
      const t = b.initializer('T', f32(f.inputs.X.shape, (f.target as number[][]).flat()));
      const softplus = b.op('Log', [b.op('Add', [c32(b, 1), b.op('Exp', [b.op('Neg', [b.op('Abs', [X])])])])]);
      const terms = b.op('Add', [b.op('Sub', [b.op('Relu', [X]), b.op('Mul', [X, t])]), softplus]);
      return { b, output: b.op('ReduceMean', [terms], { keepdims: attr.int(0) }), extra: [] };
    }
    case 'cross_entropy_label_smoothing': {
      // mean over the batch of −Σ q·log softmax(x), q = (1−ε)·onehot + ε/C
      const [n, c] = f.inputs.X.shape;
      const eps = Number(f.attrs.label_smoothing);
      const q = Array.from({ length: n * c }, (_, k) => (1 - eps) * Number((f.target as number[])[Math.floor(k / c)] === k % c) + eps / c);
      const logp = b.op('LogSoftmax', [X], { axis: attr.int(1) });
      const perRow = b.op('ReduceSum', [b.op('Mul', [logp, b.initializer('Q', f32([n, c], q))]), b.initializer('ax1', { dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) })], { keepdims: attr.int(0) });
      return { b, output: b.op('Neg', [b.op('ReduceMean', [perRow], { keepdims: attr.int(0) })]), extra: [] };
    }
    case 'batchnorm_train': {
      const extra = f.extra as Record<string, RefTensor>;
      b.initializer('running_mean', toTensor(extra.running_mean_before));
      b.initializer('running_var', toTensor(extra.running_var_before));
      const momentum = 1 - Number(f.attrs.momentum_torch);
      const [y, rm, rv] = b.opN('BatchNormalization', [X, 'S', 'B', 'running_mean', 'running_var'], {
        epsilon: attr.float(Number(f.attrs.epsilon)),
        momentum: attr.float(momentum),
        training_mode: attr.int(1),
      }, 3);
      const stats = decomposeBatchNormForTraining(b);
      expect(stats).toHaveLength(1);
      expect(stats[0].runningMeanOut).toBe(rm);
      expect(stats[0].runningVarOut).toBe(rv);
      return { b, output: y, extra: [[rm, extra.running_mean_after], [rv, extra.running_var_after]] };
    }
    default:
      return { b, output: b.op(f.op, [X, ...params], onnxAttrs(f)), extra: [] };
  }
}

describe('gradients against PyTorch reference fixtures', () => {
  const files = opFixtureFiles();
  it('finds the fixtures', () => {
    expect(files.length).toBeGreaterThan(15);
  });
  for (const file of files) {
    it(file, async () => {
      const f = loadFixture(file, OpFixture);
      const { b, output, extra } = forward(f);
      b.input('dY', 'float32', f.grad_output.shape);
      const wrt = [...Object.keys(f.inputs), ...Object.keys(f.params)];
      const grads = backward(b, { loss: output, wrt, lossGrad: 'dY' });
      b.output(output, 'float32');
      for (const w of wrt) b.output(grads.get(w) as string, 'float32');
      for (const [v] of extra) b.output(v, 'float32');
      const session = await createSession(b.toModel(), { threads: 1 });
      const feeds: Record<string, TensorData> = { dY: toTensor(f.grad_output) };
      for (const [k, t] of Object.entries({ ...f.inputs, ...f.params })) feeds[k] = toTensor(t);
      const r = await session.run(feeds);
      await session.release();
      const errors: Record<string, number> = { output: relError(r[output], f.output) };
      for (const w of wrt) errors[`d${w}`] = relError(r[grads.get(w) as string], f.grads[w]);
      for (const [v, ref] of extra) errors[v] = relError(r[v], ref);
      for (const [k, e] of Object.entries(errors)) expect(e, `${f.case}: ${k}`).toBeLessThanOrEqual(TOL);
    });
  }
});
