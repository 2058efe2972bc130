import { z } from 'zod';

/**
 * Task names. The names are declared by the task registry (src/tasks/registry.ts) as each task
 * registers, so every schema that names a task accepts exactly the registered ones — a task added
 * in-process appears here with no edit — while this file still imports nothing of ours.
 */
const declared: string[] = [];

/**
 * What a task's images carry: one `label` (classification), a set of `labels` (multi-label),
 * numeric `targets` (regression), or only their annotations (boxes, masks: the tasks stored
 * before they are registered, whose `label` is a lone category when there is one).
 */
export type LabelShape = 'single' | 'multi' | 'targets' | 'annotations';
const shapes = new Map<string, LabelShape>();

/** Called by `registerTask`; the order of declaration is the order shown everywhere. */
export function declareTaskName(name: string, shape: LabelShape = 'single'): void {
  if (!declared.includes(name)) declared.push(name);
  shapes.set(name, shape);
}

/** The label shape a task declared; a task not registered here keeps its annotations. */
export function taskLabelShape(name: string): LabelShape {
  return shapes.get(name) ?? 'annotations';
}

export function declaredTaskNames(): readonly string[] {
  return declared;
}

/** Dataset tasks that import and store but have no registered task yet (they cannot train). */
export const STORED_ONLY_TASKS = ['detection', 'segmentation'] as const;

const NAME = /^[a-z][a-z0-9_]{0,39}$/;

/**
 * A task name as stored files carry it: the form only. A reader never depends on which tasks this
 * thread has registered; the services check a stored name against the registry where it matters.
 */
export const StoredTaskNameSchema = z.string().regex(NAME, 'a task name (lowercase letters, digits, _)');

/** A registered task's name. */
export const TaskNameSchema = z.string({ error: 'must be a task name' }).superRefine((v, ctx) => {
  if (!NAME.test(v) || !declared.includes(v)) ctx.addIssue({ code: 'custom', message: `must be one of ${declared.map((n) => `"${n}"`).join(', ')}` });
});

/** A dataset's task: a registered one, or one whose data is stored before its task exists. */
export const DatasetTaskSchema = z.string({ error: 'must be a task name' }).superRefine((v, ctx) => {
  if (!NAME.test(v) || !(declared.includes(v) || (STORED_ONLY_TASKS as readonly string[]).includes(v))) {
    ctx.addIssue({ code: 'custom', message: `must be one of ${[...declared, ...STORED_ONLY_TASKS].map((n) => `"${n}"`).join(', ')}` });
  }
});
