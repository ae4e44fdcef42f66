import { describe, expect, it } from 'vitest';
import { storageFlag } from './preferences';

function memoryStorage(): Storage {
  const m = new Map<string, string>();
  return {
    get length() {
      return m.size;
    },
    clear: () => m.clear(),
    getItem: (k) => m.get(k) ?? null,
    key: (i) => [...m.keys()][i] ?? null,
    removeItem: (k) => void m.delete(k),
    setItem: (k, v) => void m.set(k, String(v)),
  };
}

describe('storageFlag', () => {
  it('reads the default until written, then what was written; junk reads as the default', () => {
    const storage = memoryStorage();
    const flag = storageFlag('k', true, () => storage);
    expect(flag.read()).toBe(true);
    flag.write(false);
    expect(storage.getItem('k')).toBe('0');
    expect(flag.read()).toBe(false);
    flag.write(true);
    expect(flag.read()).toBe(true);
    storage.setItem('k', 'maybe');
    expect(flag.read()).toBe(true);
  });

  it('a blocked or missing storage reads as the default and saves nothing, without throwing', () => {
    const blocked = storageFlag('k', true, () => {
      throw new DOMException('denied', 'SecurityError');
    });
    expect(blocked.read()).toBe(true);
    expect(() => blocked.write(false)).not.toThrow();
    const none = storageFlag('k', false, () => undefined);
    none.write(true);
    expect(none.read()).toBe(false);
  });
});
