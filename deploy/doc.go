// Package deploy holds the tests of the deployment files: the Kubernetes
// manifests of deploy/kubernetes, rendered by kustomize, and the
// docker-compose.yml of the repository root. It is a module of its own so
// that the Kubernetes API types and the Compose loader these tests need are
// not dependencies of the library.
package deploy
