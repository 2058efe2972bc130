import type { DataType, TypedArray } from './ir.ts';

/**
 * ONNX TensorProto.DataType codes for the dtypes the studio models, and the typed array each is
 * held in. `Cast`'s `to` attribute and `elem_type` use these codes.
 */
export const ONNX_DTYPE: Record<DataType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

const BY_CODE = new Map<number, DataType>(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DataType]));

/** The studio dtype for an ONNX code, or undefined for codes we do not model (string, uint16, …). */
export function dtypeFromOnnx(code: number): DataType | undefined {
  return BY_CODE.get(code);
}

export const BYTES_PER_ELEMENT: Record<DataType, number> = {
  float32: 4, float16: 2, float64: 8, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1,
};

/** A zero-filled typed array of the right class for `dtype`. */
export function allocTyped(dtype: DataType, length: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(length);
    case 'float64': return new Float64Array(length);
    case 'float16': return new Uint16Array(length);
    case 'int64': return new BigInt64Array(length);
    case 'int32': return new Int32Array(length);
    case 'int8': return new Int8Array(length);
    case 'uint8':
    case 'bool': return new Uint8Array(length);
  }
}

/** A typed array of `dtype` viewing `buffer` (which must be suitably aligned). */
export function typedView(dtype: DataType, buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(buffer, byteOffset, length);
    case 'float64': return new Float64Array(buffer, byteOffset, length);
    case 'float16': return new Uint16Array(buffer, byteOffset, length);
    case 'int64': return new BigInt64Array(buffer, byteOffset, length);
    case 'int32': return new Int32Array(buffer, byteOffset, length);
    case 'int8': return new Int8Array(buffer, byteOffset, length);
    case 'uint8':
    case 'bool': return new Uint8Array(buffer, byteOffset, length);
  }
}
