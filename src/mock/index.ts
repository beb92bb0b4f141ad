/** The mock server: a Dify- and OpenAI-compatible HTTP server with fault injection. */

export { type ArrivalWindow, arrivalWindow } from './arrivals.js';
export {
  MOCK_USAGE,
  type MockCommandIo,
  mockCommand,
  parseErrorRates,
  parseLatency,
  parseMockArgs,
} from './cli.js';
export { gradedText, type MockGraderRule, mockEmbedding } from './grader.js';
export {
  type LatencySpec,
  MOCK_FAULTS,
  type MockFault,
  type MockLimits,
  type MockOptions,
  type MockOutputRule,
  type MockServer,
  type MockStats,
  type RecordedRequest,
  startMock,
} from './server.js';
