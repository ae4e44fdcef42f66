import { describe, expect, it } from 'vitest';
import { quotaError } from './model-store';

describe('quotaError', () => {
  it('puts what is still needed against what is available', () => {
    const e = quotaError(2_274_000_000, 900_000_000);
    expect(e.code).toBe('STORAGE_QUOTA');
    expect(e.message).toBe(
      'Not enough storage for this model: 2.27 GB still needed, 900.0 MB available. Free disk space, delete other cached models, or leave private browsing; the bytes already stored are kept.',
    );
  });

  it('says the browser refused when its estimate shows more room than is needed', () => {
    expect(quotaError(5_500_000, 10_740_000_000).message).toMatch(
      /^Not enough storage for this model: 5\.5 MB still needed; the browser reports 10\.74 GB free but refused to store more for this site\. Free disk space/,
    );
  });
});
