package main

import (
	"io"

	"github.com/lode-pool/lode/internal/config"
)

// The daemon's configuration is lode.yaml as package internal/config reads
// it (the same file lodectl reads). These names keep the daemon's code
// short.
type (
	Config        = config.Config
	LogConfig     = config.LogConfig
	Secret        = config.Secret
	Secrets       = config.Secrets
	NodeConfig    = config.NodeConfig
	RedisConfig   = config.RedisConfig
	PoolConfig    = config.PoolConfig
	PayoutsConfig = config.PayoutsConfig
	APIConfig     = config.APIConfig
	ConfigError   = config.Error
)

// Roles a process can run (see config.AllRoles).
const (
	RoleStratum  = config.RoleStratum
	RoleAPI      = config.RoleAPI
	RoleUnlocker = config.RoleUnlocker
	RolePayouts  = config.RolePayouts
)

var allRoles = config.AllRoles

// Defaults returns the configuration used for every key the file leaves out.
func Defaults() Config { return config.Defaults() }

// LoadConfig reads and validates a config file (config.Load).
func LoadConfig(path string) (Config, error) { return config.Load(path) }

// ParseConfig decodes and validates a config (config.Parse).
func ParseConfig(r io.Reader) (Config, error) { return config.Parse(r) }
