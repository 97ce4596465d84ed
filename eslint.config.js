import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

// Type-aware: every linted file belongs to a tsconfig (tsconfig.json, client/, web/), found by the
// project service; the .mjs scripts and the deploy validator are type-checked as JavaScript (checkJs).
export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tap/', 'coverage/', '.tools/', '.run/', '.image/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // tap queues a subtest and reports its failures itself: the promise t.test returns never rejects
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }]
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      'max-len': ['error', { code: 140, ignoreUrls: true, ignoreRegExpLiterals: true }]
    }
  }
)
