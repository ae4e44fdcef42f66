import { describe, expect, it } from 'vitest';
import { MIN_ANSWER_TOKENS, planContext } from './contextPolicy';

type Role = 'system' | 'user' | 'assistant';
const S: Role = 'system', U: Role = 'user', A: Role = 'assistant';

describe('planContext', () => {
  it('keeps everything when it fits', () => {
    const plan = planContext({ roles: [S, U, A, U], counts: [10, 20, 30, 40], overhead: 3, contextLimit: 1000, maxNewTokens: 100 });
    expect(plan).toEqual({ fits: true, keep: [0, 1, 2, 3], droppedMessages: 0, promptTokens: 103, maxNewTokens: 100 });
  });

  it('drops whole turns, oldest first, and keeps the system prompt', () => {
    // 3 + 10 + (100+100) + (100+100) + 50 = 463; limit 400 with 100 reserved for the answer.
    const plan = planContext({ roles: [S, U, A, U, A, U], counts: [10, 100, 100, 100, 100, 50], overhead: 3, contextLimit: 400, maxNewTokens: 100 });
    expect(plan).toEqual({ fits: true, keep: [0, 3, 4, 5], droppedMessages: 2, promptTokens: 263, maxNewTokens: 100 });
  });

  it('drops every older turn when needed, down to the newest message', () => {
    const plan = planContext({ roles: [S, U, A, U, A, U], counts: [10, 100, 100, 100, 100, 50], overhead: 3, contextLimit: 200, maxNewTokens: 100 });
    expect(plan).toEqual({ fits: true, keep: [0, 5], droppedMessages: 4, promptTokens: 63, maxNewTokens: 100 });
  });

  it('works without a system prompt', () => {
    const plan = planContext({ roles: [U, A, U], counts: [100, 100, 50], overhead: 0, contextLimit: 100, maxNewTokens: 40 });
    expect(plan).toEqual({ fits: true, keep: [2], droppedMessages: 2, promptTokens: 50, maxNewTokens: 40 });
  });

  it('shrinks the answer budget to the room left when the newest message is long', () => {
    const plan = planContext({ roles: [S, U], counts: [10, 900], overhead: 2, contextLimit: 1000, maxNewTokens: 512 });
    expect(plan).toEqual({ fits: true, keep: [0, 1], droppedMessages: 0, promptTokens: 912, maxNewTokens: 88 });
  });

  it('refuses, with the numbers, when the system prompt and newest message leave no room', () => {
    const plan = planContext({ roles: [S, U, A, U], counts: [100, 5, 5, 995 - MIN_ANSWER_TOKENS], overhead: 0, contextLimit: 1000, maxNewTokens: 512 });
    expect(plan.fits).toBe(false);
    if (!plan.fits) {
      expect(plan.promptTokens).toBe(1095 - MIN_ANSWER_TOKENS);
      expect(plan.message).toContain(`take ${1095 - MIN_ANSWER_TOKENS} tokens`);
      expect(plan.message).toContain('1000-token context');
    }
  });

  describe('continuing an answer (the list ends with it)', () => {
    it('drops older turns but keeps the question with the answer', () => {
      const plan = planContext({ roles: [S, U, A, U, A], counts: [10, 100, 100, 100, 100], overhead: 3, contextLimit: 350, maxNewTokens: 100 });
      expect(plan).toEqual({ fits: true, keep: [0, 3, 4], droppedMessages: 2, promptTokens: 213, maxNewTokens: 100 });
    });

    it('gives it the room left, never leaving its question out', () => {
      const plan = planContext({ roles: [S, U, A], counts: [10, 100, 700], overhead: 0, contextLimit: 1000, maxNewTokens: 512 });
      expect(plan).toEqual({ fits: true, keep: [0, 1, 2], droppedMessages: 0, promptTokens: 810, maxNewTokens: 190 });
    });

    it('refuses when the answer has filled the context, saying it cannot be continued', () => {
      const plan = planContext({ roles: [S, U, A], counts: [10, 100, 880], overhead: 0, contextLimit: 1000, maxNewTokens: 512 });
      expect(plan.fits).toBe(false);
      if (!plan.fits) {
        expect(plan.promptTokens).toBe(990);
        expect(plan.message).toBe(
          "This answer, its question and the system prompt take 990 tokens, which leaves no room to continue it in this model's 1000-token context. Ask for the rest in a new message instead.",
        );
      }
    });
  });

  it('rejects mismatched inputs', () => {
    expect(() => planContext({ roles: [U], counts: [], overhead: 0, contextLimit: 10, maxNewTokens: 1 })).toThrow('1 roles but 0 counts');
  });
});
