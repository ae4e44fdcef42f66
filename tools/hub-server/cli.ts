/**
 * Serve a folder in the Hub's layout for manual testing:
 *   npx tsx tools/hub-server/cli.ts --dir ./tiny-model --repo local/tiny-phi3
 * then open the app with `?hub=<printed url>&model=local/tiny-phi3`.
 */
import { repoFromDir, startHubServer } from './server';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const repo = await repoFromDir(arg('repo', 'local/model'), arg('dir', '.'));
const hub = await startHubServer([repo]);
console.log(`hub: ${hub.url}  (cdn ${hub.cdnUrl}); repo ${repo.id} @ ${hub.commitOf(repo.id)}, ${repo.files.size} files`);
