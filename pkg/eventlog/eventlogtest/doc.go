// Package eventlogtest is the conformance suite of eventlog.EventLog,
// written once and run against every implementation:
//
//	func TestConformance(t *testing.T) {
//		eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog { return newEmptyLog(t) })
//	}
//
// Run covers every rule of the event log contract with named example
// tests, then a race of concurrent appenders, a linearizability check of
// concurrent histories (porcupine) and a model-based property test
// (rapid), the last two against the same small sequential model of the
// contract. Options scale the heavy tests down for slow backends.
package eventlogtest
