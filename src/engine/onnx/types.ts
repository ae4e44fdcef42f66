/**
 * What the streaming ONNX reader yields: the graph structure, and for every initializer where its
 * bytes live — never the bytes of a large tensor themselves. Shapes and enums follow onnx.proto3.
 * Everything here is plain data (structured-clone safe), so it may cross the worker boundary.
 */

/** A random-access source of bytes: a Blob/File, a Node file, or a model stored as IndexedDB chunks. */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /** Reads exactly `length` bytes at `offset` (fewer only past the end). Must not hold the whole source. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** onnx.TensorProto.DataType values (Phi-3 files use FLOAT, FLOAT16, UINT8, INT32 and INT64). */
export const OnnxDataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
} as const;
export type OnnxDataTypeValue = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** Where an initializer's bytes are. */
export type TensorLocation =
  /** `raw_data` inside the .onnx file: `offset` is the absolute byte offset in that file. */
  | { kind: 'inline'; offset: number; length: number }
  /** In an external data file named by `location` (relative to the .onnx), at `offset`. */
  | { kind: 'external'; file: string; offset: number; length: number }
  /** Small tensors stored in typed fields (float_data, int64_data, ...), decoded to little-endian bytes. */
  | { kind: 'embedded'; bytes: Uint8Array };

export interface OnnxTensorInfo {
  name: string;
  dataType: number;
  dims: number[];
  location: TensorLocation;
}

export type OnnxAttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: OnnxTensorInfo }
  | { type: 'graph'; value: OnnxGraph }
  /** Rare in practice (no Phi-3 op uses them); kept so that no attribute is silently lost. */
  | { type: 'tensors'; value: OnnxTensorInfo[] }
  | { type: 'graphs'; value: OnnxGraph[] };

export interface OnnxNode {
  name: string;
  opType: string;
  /** '' (or 'ai.onnx') for the default domain; 'com.microsoft' for contrib ops. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttributeValue>;
}

export interface OnnxValueInfo {
  name: string;
  /** Element type (OnnxDataType) when the value is a tensor. */
  elemType?: number;
  /** Each dim is a number, a symbolic name, or null when unknown. */
  shape?: Array<number | string | null>;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensorInfo[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Shapes of intermediate values, when the exporter recorded them (the reader always fills it). */
  valueInfo?: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: Array<{ domain: string; version: number }>;
  producerName: string;
  graph: OnnxGraph;
}
