/**
 * Moved: the child-process helpers are in tests/_support/dev_server.ts and the load test in
 * tests/_support/load.ts. This re-export remains only for tests/faults_test.ts until its import
 * names the new module.
 *
 * @module
 */
export * from "../tests/_support/dev_server.ts";
