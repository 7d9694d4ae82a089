// ESLint flat config: @eslint/js recommended + typescript-eslint's type-aware recommended rules
// (recommendedTypeChecked, types from tsconfig.json through the project service).
// Layout is Prettier's business (.prettierrc.json): no rule here is about formatting.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Built output and generated code (src/cell/helper-script.ts is written by scripts/embed-helper.mjs).
  globalIgnores(['dist/', 'build/', 'src/cell/helper-script.ts', 'test/.cache/']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // tsconfig.json covers src/ and test/; the root's vitest.config.ts gets a default project.
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Async without await is deliberate: bodies went synchronous on the warm path but keep their
      // Promise API (a throw stays a rejection for callers), and test fakes implement async interfaces.
      '@typescript-eslint/require-await': 'off',
      // `const { omitted: _, ...rest } = value` is how the code drops fields from a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    // Environment names are checked for control characters on purpose (a newline splits an env line).
    files: ['src/cellspec/validate.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    // Tests parse JSON the code under test wrote (result files, manifests, summaries) and check it
    // at run time with expect(): typing every JSON.parse would add casts, not checks.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain JavaScript (bench/, scripts/, the CLI launcher, this file) has no types to check:
    // type-aware rules would only report that everything is `any`.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The launcher is CommonJS by design (dist/cli.js loads the bundle with a V8 code cache).
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
