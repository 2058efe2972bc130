import path from 'node:path';
import { z } from 'zod';

/** Settings come from the environment only; every one has a default and a bound. */
const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  STUDIO_WORKSPACE: z.string().min(1).default('./workspace'),
  STUDIO_TOKEN: z.string().min(8).optional(),
  STUDIO_MAX_UPLOAD_MB: z.coerce.number().positive().max(100_000).default(2048),
  STUDIO_MAX_ZIP_ENTRIES: z.coerce.number().int().positive().default(200_000),
  STUDIO_MAX_UNCOMPRESSED_MB: z.coerce.number().positive().default(20_000),
  // Long enough for a maximum-size zip upload at ~4 MB/s; slow-loris connections still get cut.
  STUDIO_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
  STUDIO_EXAMPLE: z.enum(['on', 'off']).default('on'),
  // Where official pretrained weights are downloaded from (torchvision's; a mirror, or a local server in tests).
  STUDIO_WEIGHTS_BASE_URL: z.string().url().default('https://download.pytorch.org/models/'),
  STUDIO_WEIGHTS_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
});

export interface Settings {
  port: number;
  host: string;
  workspace: string;
  token?: string;
  maxUploadBytes: number;
  maxZipEntries: number;
  maxUncompressedBytes: number;
  requestTimeoutMs: number;
  /** JSON bodies are small by contract; uploads go through multipart with their own limits. */
  bodyLimitBytes: number;
  exampleProject: boolean;
  /** Base URL of the pinned pretrained-weights files (plan/weights.md). */
  weightsBaseUrl: string;
  /** How long a weights download waits for the host to answer (and for the next byte) before it gives up. */
  weightsTimeoutMs: number;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Settings> = {}): Settings {
  const e = EnvSchema.parse(env);
  return {
    port: e.PORT,
    host: e.HOST,
    workspace: path.resolve(e.STUDIO_WORKSPACE),
    token: e.STUDIO_TOKEN,
    maxUploadBytes: Math.round(e.STUDIO_MAX_UPLOAD_MB * 1024 * 1024),
    maxZipEntries: e.STUDIO_MAX_ZIP_ENTRIES,
    maxUncompressedBytes: Math.round(e.STUDIO_MAX_UNCOMPRESSED_MB * 1024 * 1024),
    requestTimeoutMs: e.STUDIO_REQUEST_TIMEOUT_MS,
    bodyLimitBytes: 1024 * 1024,
    exampleProject: e.STUDIO_EXAMPLE === 'on',
    weightsBaseUrl: e.STUDIO_WEIGHTS_BASE_URL.endsWith('/') ? e.STUDIO_WEIGHTS_BASE_URL : `${e.STUDIO_WEIGHTS_BASE_URL}/`,
    weightsTimeoutMs: e.STUDIO_WEIGHTS_TIMEOUT_MS,
    ...overrides,
  };
}
