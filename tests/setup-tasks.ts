/**
 * Every test process loads the task registry, as the studio's entry points do (src/app.ts, the
 * workers): what a dataset's images carry is what its task declared (src/schemas/task.ts).
 */
import '../src/tasks/index.ts';
