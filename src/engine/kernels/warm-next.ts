/**
 * tuning.warmNext, shared by its hosts (the plain decode GEMVs of matmul-nbits.ts and decode
 * attention in attention.ts): the WGSL of shaders/matmul_nbits_warm_next.wgsl or its stub, the
 * share's check, and the group-1 bind group that points a host's second layer of workgroups at the
 * next matmul's packed rows. Its header says what the layer reads and why.
 * Rule: a host dispatches that layer (z = 1) only in decode and only once set up, and nothing it
 * computes may depend on it: with or without it, outputs are bit for bit the same.
 */
import warmNextSource from '../../../shaders/matmul_nbits_warm_next.wgsl?raw';
import { AppError } from '../errors';
import { createUniformBuffer, packUniform } from '../gpu/buffers';

export { warmNextSource };

/**
 * What every host's shader gets instead of the real file: WARM false makes the hosts' `if (WARM
 * && wid.z != 0u)` dead code, so their pipelines without warmNext compile as they did before it.
 */
export const WARM_OFF = `const WARM = false;
fn warmRun(g: u32, lid: u32, WG: u32) {}
`;

/** Words of prefix a layer-1 invocation of an attention host reads (the shader's eight loads in flight). */
export const WARM_WORDS_PER_INVOCATION = 8;

/** A matmul's packed weight rows as the GEMVs read them: `rows` rows of `rowWords` 16-byte words. */
export interface WarmRows {
  buffer: GPUBuffer;
  rows: number;
  rowWords: number;
}

/** The share of each row a host reads (tuning.warmNext), checked: a number from 0 to 1. */
export function checkWarmShare(share: number): number {
  if (!(Number.isFinite(share) && share >= 0 && share <= 1)) throw new AppError('BAD_ARGUMENT', `tuning.warmNext = ${String(share)} must be a number from 0 to 1.`);
  return share;
}

/** Leading words of each row read for `share` (at least one). */
export function warmPrefixWords(share: number, rowWords: number): number {
  return Math.max(1, Math.min(rowWords, Math.round(share * rowWords)));
}

/** Layer-1 workgroups an attention host needs for one run of WG · 8 words each (every invocation's eight loads at once). */
export function warmGroupsFor(next: WarmRows, share: number, WG: number): number {
  return Math.ceil((next.rows * warmPrefixWords(share, next.rowWords)) / (WG * WARM_WORDS_PER_INVOCATION));
}

/**
 * A kernel that can read the next matmul's rows while it runs: a plain decode GEMV
 * (MatMulNBitsKernel) or decode attention (AttentionKernel), each with the share it was created with.
 */
export interface WarmHost {
  /** Bytes of the `sums` buffer warmNext needs to warm `next` (one u32 per reading invocation); 0 where it will not. */
  warmSumsBytes(next: WarmRows | null): number;
  /**
   * From now on every decode dispatch of this kernel also reads the leading share of each of
   * `next`'s rows (the header of shaders/matmul_nbits_warm_next.wgsl), writing what it read into
   * `sums` (≥ warmSumsBytes(next); one buffer may serve every host of a step, which runs them one at
   * a time). Returns the bytes read per dispatch: 0, changing nothing, where warmSumsBytes is 0.
   * Call at most once.
   */
  warmNext(next: WarmRows | null, sums: GPUBuffer): number;
}

export interface Warm {
  /** group 1 of the host's warming pipeline */
  group: GPUBindGroup;
  /** bytes of `next` read per dispatch */
  bytes: number;
}

/**
 * The group-1 bind group of a host whose layer 1 has `groups` reading workgroups of WG
 * invocations: `sums` must hold groups · WG words (checked).
 */
export function createWarm(device: GPUDevice, layout: GPUBindGroupLayout, next: WarmRows, share: number, groups: number, WG: number, sums: GPUBuffer, label: string): Warm {
  const need = groups * WG * 4;
  if (sums.size < need) throw new AppError('BAD_ARGUMENT', `${label}: the warmNext sums buffer has ${sums.size} bytes; it needs at least ${need}.`);
  const prefixWords = warmPrefixWords(share, next.rowWords);
  const params = createUniformBuffer(device, packUniform([{ u32: next.rows }, { u32: next.rowWords }, { u32: prefixWords }, { u32: groups }]), `${label}.warm.params`);
  return {
    group: device.createBindGroup({ label: `${label}.warm`, layout, entries: [params, next.buffer, sums].map((buffer, binding) => ({ binding, resource: { buffer } })) }),
    bytes: next.rows * prefixWords * 16,
  };
}
