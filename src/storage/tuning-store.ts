/**
 * Kernel tunings measured on this device (engine/phi3/autotune.ts), one record per key: the
 * MatMulNBits kernels' under `autotuneKey` and attention's under `attentionAutotuneKey` (GPU,
 * model shape, kernel source, candidates; the two never collide), in an IndexedDB database of its own beside the
 * model store, so it needs no migration of that store and clearing models keeps it (records are a
 * few hundred bytes). A record is a cache: losing it only means measuring again at the next load,
 * so the worker treats every failure here as "nothing stored".
 * Rule: a record whose tuning no longer runs is deleted by the caller, not kept.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { CandidateTiming, TuningCandidate } from '../engine/phi3/autotune';
import type { AttentionTuning } from '../engine/kernels/attention';

/** The MatMulNBits kernels' choice (autotuneKernels). */
export interface StoredTuning {
  key: string;
  decode: { chosen: TuningCandidate; timings: CandidateTiming[] };
  /** Its chosen tuning includes the decode choice: the one the runtime runs. */
  prefill: { chosen: TuningCandidate; timings: CandidateTiming[] };
  /** ms since the epoch */
  measuredAt: number;
}

/** Attention's choice (autotuneAttention), measured once a chat was long. */
export interface StoredAttentionTuning {
  key: string;
  attention: {
    decode: { chosen: TuningCandidate<AttentionTuning>; timings: CandidateTiming[] };
    /** Its chosen tuning includes the decode choice: the one the runtime runs. */
    prefill: { chosen: TuningCandidate<AttentionTuning>; timings: CandidateTiming[] };
    /** The context it was measured at (tokens). */
    context: number;
  };
  /** ms since the epoch */
  measuredAt: number;
}

interface TuningDb extends DBSchema {
  tunings: { key: string; value: StoredTuning | StoredAttentionTuning };
}

export const TUNING_DB_NAME = 'phi3-kernel-tuning';

export class TuningStore {
  private db: Promise<IDBPDatabase<TuningDb>> | undefined;

  constructor(private readonly name = TUNING_DB_NAME) {}

  private open(): Promise<IDBPDatabase<TuningDb>> {
    if (this.db) return this.db;
    const drop = () => {
      if (this.db === opening) this.db = undefined;
    };
    const opening = openDB<TuningDb>(this.name, 1, {
      upgrade(db) {
        db.createObjectStore('tunings', { keyPath: 'key' });
      },
      // A later version of this small cache may replace it: step aside.
      blocking(_current, _wanted, event) {
        (event.target as IDBDatabase).close();
        drop();
      },
      terminated: drop,
    });
    opening.catch(drop);
    return (this.db = opening);
  }

  /** The MatMulNBits record under `key` (none where the record there is another kind). */
  async get(key: string): Promise<StoredTuning | undefined> {
    const record = await (await this.open()).get('tunings', key);
    return record && 'decode' in record ? record : undefined;
  }

  /** The attention record under `key` (none where the record there is another kind). */
  async getAttention(key: string): Promise<StoredAttentionTuning | undefined> {
    const record = await (await this.open()).get('tunings', key);
    return record && 'attention' in record ? record : undefined;
  }

  async put(record: StoredTuning | StoredAttentionTuning): Promise<void> {
    await (await this.open()).put('tunings', record);
  }

  async delete(key: string): Promise<void> {
    await (await this.open()).delete('tunings', key);
  }
}
