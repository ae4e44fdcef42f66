/**
 * Vitest globalSetup: starts the hub spawner and hands its URL to tests as `inject('hubSpawner')`.
 * Browser tests then spawn an isolated Hub per test through it (see tools/hub-server/client.ts).
 */
import type { TestProject } from 'vitest/node';
import { startSpawner } from './spawner';

declare module 'vitest' {
  export interface ProvidedContext {
    hubSpawner: string;
  }
}

export default async function setup(project: TestProject) {
  const spawner = await startSpawner();
  project.provide('hubSpawner', spawner.url);
  return () => spawner.close();
}
