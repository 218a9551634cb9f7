import { ApiException } from '#strata/common';
import { HashingGate } from './hashing.gate';
import { hashPassword, verifyPassword } from './password.hasher';
import { PASSWORD_HASHING } from './hashing.gate';

describe('password hashing runs with bounded concurrency', () => {
  it('16 concurrent checks never have more than the configured number in flight, and all of them finish', async () => {
    const gate = new HashingGate(2, 64);
    let inFlight = 0;
    let peak = 0;
    const work = () =>
      gate.run(async () => {
        peak = Math.max(peak, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return true;
      });
    const results = await Promise.all(Array.from({ length: 16 }, work));
    expect(results).toEqual(Array(16).fill(true));
    expect(peak).toBe(2);
    expect(gate.stats).toEqual({ inFlight: 0, peakInFlight: 2, queued: 0 });
  });

  it('past the queue it refuses with 429 rate_limited and Retry-After, and a failed hash frees its slot', async () => {
    const gate = new HashingGate(1, 1);
    let release!: () => void;
    const first = gate.run(() => new Promise<void>((r) => (release = r)));
    const queued = gate.run(async () => 'queued');
    const refused = await gate.run(async () => 'never').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiException);
    expect((refused as ApiException).getStatus()).toBe(429);
    expect((refused as ApiException).code).toBe('rate_limited');
    expect((refused as ApiException).headers).toEqual({ 'Retry-After': '1' });
    release();
    await first;
    await expect(queued).resolves.toBe('queued');
    await expect(gate.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.run(async () => 'after')).resolves.toBe('after');
  });

  it("the process's scrypt calls go through the gate: 16 concurrent verifications peak at its concurrency", async () => {
    PASSWORD_HASHING.configure(2, 64);
    const hash = await hashPassword('correct horse');
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, PASSWORD_HASHING.stats.inFlight)), 1);
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => verifyPassword(i === 0 ? 'correct horse' : 'wrong', hash)));
    clearInterval(sampler);
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(peak).toBeGreaterThan(0);
    expect(PASSWORD_HASHING.stats.peakInFlight).toBeLessThanOrEqual(2);
  });
});
