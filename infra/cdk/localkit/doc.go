// Package localkit checks the LocalStack kit: localstack/docker-compose.yml
// and the localstack-* make targets. It has no code of its own; its tests
// run offline, without Docker, and import nothing of the CDK, so they
// build in a second.
package localkit
