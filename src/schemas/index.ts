export * from './common.ts';
export * from './studio.ts';
export * from './project.ts';
export * from './dataset.ts';
export * from './job.ts';
export * from './experiment.ts';
export * from './model.ts';
