/**
 * Validation of per-conversation settings, shared by the settings form (strings the user typed)
 * and the JSON importer (values of any type). Every message names the setting, the allowed range
 * and quotes the bad value, as transformers.js does. Rule: a range changed here changes both the
 * form and what imports accept — keep `SETTING_LIMITS` the single source.
 */
import type { ConversationSettings } from './types';

type NumericKey = Exclude<keyof ConversationSettings, 'systemPrompt'>;

interface Limit {
  label: string;
  min: number;
  max: number;
  integer: boolean;
  /** Whether `min` itself is excluded. */
  minExclusive?: boolean;
  hint: string;
}

export const SYSTEM_PROMPT_MAX_CHARS = 8000;

/** Whether two sets of settings hold the same fields with the same values. */
export function sameSettings(a: ConversationSettings, b: ConversationSettings): boolean {
  const keys = Object.keys(a) as (keyof ConversationSettings)[];
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export const SETTING_LIMITS: Record<NumericKey, Limit> = {
  temperature: { label: 'Temperature', min: 0, max: 2, integer: false, hint: '0 is greedy; higher is more random' },
  topK: { label: 'Top-k', min: 0, max: 32064, integer: true, hint: '0 turns top-k off' },
  topP: { label: 'Top-p', min: 0, max: 1, integer: false, minExclusive: true, hint: '1 turns nucleus sampling off' },
  repetitionPenalty: { label: 'Repetition penalty', min: 1, max: 2, integer: false, hint: '1 turns it off' },
  maxNewTokens: { label: 'Max new tokens', min: 1, max: 8192, integer: true, hint: 'the longest answer, in tokens' },
  seed: { label: 'Seed', min: 0, max: 4294967295, integer: true, hint: 'the same seed and settings repeat an answer; Regenerate takes the next seed' },
};

export const NUMERIC_KEYS = Object.keys(SETTING_LIMITS) as NumericKey[];

/** Errors by setting; `other` holds problems not tied to one setting (wrong type, unknown keys). */
export type SettingsErrors = Partial<Record<keyof ConversationSettings | 'other', string>>;
export type SettingsResult = { ok: true; settings: ConversationSettings } | { ok: false; errors: SettingsErrors };

function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === undefined) return 'nothing';
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 40 ? `${s.slice(0, 40)}…` : s;
  } catch {
    return String(value);
  }
}

function rangeText(l: Limit): string {
  const lo = l.minExclusive ? `above ${l.min}` : `from ${l.min}`;
  return `${l.integer ? 'a whole number' : 'a number'} ${lo} to ${l.max}`;
}

/** One numeric setting: a finite number (or a numeric string from a form) within its limits. */
export function validateNumber(key: NumericKey, raw: unknown): { value: number } | { error: string } {
  const l = SETTING_LIMITS[key];
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && raw.trim() !== '' && /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw.trim())) n = Number(raw.trim());
  else return { error: `${l.label} must be ${rangeText(l)} (${l.hint}); got ${quote(raw)}.` };
  const tooLow = l.minExclusive ? n <= l.min : n < l.min;
  if (!Number.isFinite(n) || tooLow || n > l.max || (l.integer && !Number.isInteger(n))) {
    return { error: `${l.label} must be ${rangeText(l)} (${l.hint}); got ${quote(raw)}.` };
  }
  return { value: n };
}

/** Validates a whole settings record; unknown keys are errors too, so imports stay strict. */
export function validateSettings(input: unknown): SettingsResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: { other: `Settings must be an object; got ${quote(input)}.` } };
  }
  const rec = input as Record<string, unknown>;
  const errors: SettingsErrors = {};
  const out: Partial<ConversationSettings> = {};
  const sp = rec.systemPrompt;
  if (typeof sp !== 'string') errors.systemPrompt = `System prompt must be text; got ${quote(sp)}.`;
  else if (sp.length > SYSTEM_PROMPT_MAX_CHARS) errors.systemPrompt = `System prompt must be at most ${SYSTEM_PROMPT_MAX_CHARS} characters; got ${sp.length}.`;
  else out.systemPrompt = sp;
  for (const key of NUMERIC_KEYS) {
    const r = validateNumber(key, rec[key]);
    if ('error' in r) errors[key] = r.error;
    else out[key] = r.value;
  }
  const unknown = Object.keys(rec).filter((k) => k !== 'systemPrompt' && !(NUMERIC_KEYS as string[]).includes(k));
  if (unknown.length > 0) errors.other = `Unknown setting ${quote(unknown[0])}.`;
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, settings: out as ConversationSettings };
}
