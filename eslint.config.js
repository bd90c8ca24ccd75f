import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Imports used only as types say so, and leave nothing behind: shared/clients.ts loads the client
      // libraries on first use, and a value import elsewhere would load them with the module.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Prettier wraps code at 120; comments and strings, which it leaves alone, are wrapped by hand to the
      // same width. Only regular expression literals may run longer.
      'max-len': ['error', { code: 120, tabWidth: 2, ignoreRegExpLiterals: true }],
    },
  },
);
