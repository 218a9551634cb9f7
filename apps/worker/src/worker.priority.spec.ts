import { spawn } from 'node:child_process';
import { getPriority } from 'node:os';
import { DEFAULT_WORKER_NICE, lowerCpuPriority, workerNiceFrom } from './worker.priority';

describe('the worker CPU priority', () => {
  it('reads WORKER_NICE: the default when unset, nothing for off, the number otherwise, and refuses the rest', () => {
    expect(workerNiceFrom({})).toBe(DEFAULT_WORKER_NICE);
    expect(workerNiceFrom({ WORKER_NICE: 'off' })).toBeNull();
    expect(workerNiceFrom({ WORKER_NICE: '' })).toBeNull();
    expect(workerNiceFrom({ WORKER_NICE: '19' })).toBe(19);
    expect(() => workerNiceFrom({ WORKER_NICE: '-5' })).toThrow(/0 to 19/);
    expect(() => workerNiceFrom({ WORKER_NICE: 'low' })).toThrow(/0 to 19/);
  });

  it('lowers a running process to the niceness asked, and never raises one already lower', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const pid = child.pid!;
      expect(lowerCpuPriority(10, pid)).toEqual({ nice: 10 });
      expect(getPriority(pid)).toBe(10);
      expect(lowerCpuPriority(5, pid)).toEqual({ nice: 10 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
