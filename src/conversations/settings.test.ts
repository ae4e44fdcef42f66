import { describe, expect, it } from 'vitest';
import { validateNumber, validateSettings } from './settings';
import { DEFAULT_SETTINGS } from './tree';

describe('settings validation', () => {
  it('accepts the defaults and numeric strings from the form', () => {
    expect(validateSettings(DEFAULT_SETTINGS)).toEqual({ ok: true, settings: DEFAULT_SETTINGS });
    const fromForm = { systemPrompt: 'Be brief.', temperature: '0', topK: '0', topP: '1', repetitionPenalty: '1.3', maxNewTokens: '64', seed: '7' };
    expect(validateSettings(fromForm)).toEqual({
      ok: true,
      settings: { systemPrompt: 'Be brief.', temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1.3, maxNewTokens: 64, seed: 7 },
    });
  });

  it('quotes the bad value and states the range', () => {
    expect(validateNumber('temperature', 'hot')).toEqual({ error: 'Temperature must be a number from 0 to 2 (0 is greedy; higher is more random); got "hot".' });
    expect(validateNumber('topP', 0)).toEqual({ error: 'Top-p must be a number above 0 to 1 (1 turns nucleus sampling off); got 0.' });
    expect(validateNumber('topK', '2.5')).toEqual({ error: 'Top-k must be a whole number from 0 to 32064 (0 turns top-k off); got "2.5".' });
    expect(validateNumber('maxNewTokens', 0)).toMatchObject({ error: expect.stringContaining('got 0.') });
    expect(validateNumber('seed', -1)).toMatchObject({ error: expect.stringContaining('got -1.') });
    expect(validateNumber('repetitionPenalty', '0.9')).toMatchObject({ error: expect.stringContaining('from 1 to 2') });
    expect(validateNumber('temperature', 'Infinity')).toMatchObject({ error: expect.stringContaining('"Infinity"') });
    expect(validateNumber('temperature', '')).toMatchObject({ error: expect.stringContaining('got "".') });
    expect(validateNumber('temperature', Number.NaN)).toMatchObject({ error: expect.stringContaining('got null.') });
  });

  it('reports every bad field at once and unknown keys', () => {
    const r = validateSettings({ ...DEFAULT_SETTINGS, temperature: 3, seed: 1.5, extra: 1 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(Object.keys(r.errors).sort()).toEqual(['other', 'seed', 'temperature']);
      expect(r.errors.other).toBe('Unknown setting "extra".');
    }
    const missing = validateSettings({ temperature: 1 });
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.errors.systemPrompt).toBe('System prompt must be text; got nothing.');
  });

  it('limits the system prompt length', () => {
    const r = validateSettings({ ...DEFAULT_SETTINGS, systemPrompt: 'x'.repeat(8001) });
    expect(r).toEqual({ ok: false, errors: { systemPrompt: 'System prompt must be at most 8000 characters; got 8001.' } });
  });
});
