//go:build !unix

package execbridge

func tooManyFiles(error) bool { return false }
