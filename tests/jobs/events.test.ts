import { describe, expect, it } from 'vitest';
import { createJobEvents } from '../../src/jobs/events.ts';

describe('job event log', () => {
  it('numbers events per job and replays those after an id', () => {
    const ev = createJobEvents();
    ev.publish('job-a', 'log', { message: 'one' });
    ev.publish('job-b', 'log', { message: 'other job' });
    ev.publish('job-a', 'log', { message: 'two' });
    expect(ev.since('job-a', 0).map((e) => e.id)).toEqual([1, 2]);
    expect(ev.since('job-a', 1).map((e) => (e.data as { message: string }).message)).toEqual(['two']);
    expect(ev.since('job-b', 0).map((e) => e.id)).toEqual([1]);
    expect(ev.since('job-missing', 0)).toEqual([]);
  });

  it('keeps only the latest of consecutive progress events, but every id stays increasing', () => {
    const ev = createJobEvents();
    ev.publish('j', 'progress', { progress: 0.1 });
    ev.publish('j', 'progress', { progress: 0.2 });
    ev.publish('j', 'log', { message: 'half way' });
    ev.publish('j', 'progress', { progress: 0.6 });
    ev.publish('j', 'progress', { progress: 0.9 });
    ev.publish('j', 'done', { status: 'succeeded' });
    const all = ev.since('j', 0);
    expect(all.map((e) => [e.id, e.type])).toEqual([
      [2, 'progress'],
      [3, 'log'],
      [5, 'progress'],
      [6, 'done'],
    ]);
    expect(ev.isFinished('j')).toBe(true);
  });

  it('delivers live events to subscribers until they unsubscribe', () => {
    const ev = createJobEvents();
    const seen: number[] = [];
    const off = ev.subscribe('j', (e) => seen.push(e.id));
    ev.publish('j', 'log', {});
    ev.publish('j', 'log', {});
    off();
    ev.publish('j', 'log', {});
    expect(seen).toEqual([1, 2]);
  });
});
