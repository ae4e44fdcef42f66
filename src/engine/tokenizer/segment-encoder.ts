/**
 * Encoding a rendered chat piece by piece, each piece remembered, so a conversation that grows by
 * a turn costs the encoding of that turn, not of the whole conversation again.
 *
 * A Hugging Face tokenizer first cuts its input at every added token (`<|user|>`, `<|end|>`, ...)
 * and encodes the text between them one piece at a time; nothing joins across such a cut. So the
 * ids of a rendered chat are the ids of its segments, each an added token and the text up to the
 * next one, laid end to end. Encoding a 112K-token conversation whole took 0.7 s on the build
 * machine before every answer; its segments were all encoded at earlier turns.
 *
 * That holds while an added token only takes its own text: one that strips the whitespace before
 * it (`lstrip`), matches whole words only (`single_word`) or is matched after normalisation
 * (`normalized`) can reach into the segment before, so with any such token every text is encoded
 * whole. The first few texts of several segments are also encoded whole and compared; one that
 * differs turns the segments off for good, so a tokenizer that cuts otherwise costs only time.
 * Rule: `encode` returns exactly what encoding the whole text returns.
 */

interface AddedToken {
  content: string;
  lstrip?: boolean;
  single_word?: boolean;
  normalized?: boolean;
}

/** Segments remembered before the memory starts over (a few per message of every conversation). */
const REMEMBERED_SEGMENTS = 32768;
/** Texts of several segments checked against the whole encoding before the segments are trusted. */
const CHECKS = 3;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function isAddedToken(t: unknown): t is AddedToken {
  return typeof t === 'object' && t !== null && typeof (t as AddedToken).content === 'string' && (t as AddedToken).content !== '';
}

export class SegmentEncoder {
  /** Matches any added token, the longest at each place (as the tokenizer matches them); undefined: encode whole. */
  private cut: RegExp | undefined;
  private readonly segments = new Map<string, number[]>();
  private checksLeft = CHECKS;

  /** `addedTokens`: tokenizer.json's `added_tokens`; `encodeWhole`: the tokenizer's encoding without `<s>`. */
  constructor(
    addedTokens: readonly unknown[],
    private readonly encodeWhole: (text: string) => number[],
  ) {
    const tokens = addedTokens.filter(isAddedToken);
    if (tokens.length === 0 || tokens.length !== addedTokens.length) return;
    if (tokens.some((t) => t.lstrip === true || t.single_word === true || t.normalized === true)) return;
    const contents = [...new Set(tokens.map((t) => t.content))].sort((a, b) => b.length - a.length);
    this.cut = new RegExp(contents.map(escape).join('|'), 'g');
  }

  /** Whether texts are still encoded by segments (false once a check failed or for unsuitable tokens). */
  get bySegments(): boolean {
    return this.cut !== undefined;
  }

  encode(text: string): number[] {
    const cut = this.cut;
    if (!cut) return this.encodeWhole(text);
    const starts = [0];
    for (const m of text.matchAll(cut)) if (m.index > 0) starts.push(m.index);
    if (starts.length === 1) return this.encodeWhole(text);
    const ids: number[] = [];
    for (let i = 0; i < starts.length; i++) {
      const segment = text.slice(starts[i], starts[i + 1] ?? text.length);
      let segmentIds = this.segments.get(segment);
      if (!segmentIds) {
        segmentIds = this.encodeWhole(segment);
        if (this.segments.size >= REMEMBERED_SEGMENTS) this.segments.clear();
        this.segments.set(segment, segmentIds);
      }
      for (const id of segmentIds) ids.push(id);
    }
    if (this.checksLeft > 0 && starts.length > 2) {
      this.checksLeft--;
      const whole = this.encodeWhole(text);
      if (whole.length !== ids.length || whole.some((id, i) => id !== ids[i])) {
        this.cut = undefined;
        this.segments.clear();
        return whole;
      }
    }
    return ids;
  }
}
