// Loads the ESM bundle post.mjs (see scripts/build.mjs).
import('./post.mjs').catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
