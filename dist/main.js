// Loads the ESM bundle main.mjs (see scripts/build.mjs).
import('./main.mjs').catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
