// Parameters of deploy/azure/main.bicep. Secrets come from the environment at
// deploy time and never sit in this file:
//   export VOXFLEET_PG_PASSWORD=$(openssl rand -base64 24)
//   export VOXFLEET_SECRET_KEY=$(openssl rand -hex 32)
//   export VOXFLEET_ADMIN_API_KEY=$(openssl rand -hex 32)
using './main.bicep'

param name = 'voxfleet'
param kubernetesVersion = '1.34'
param zones = ['1', '2', '3']
param agentNodeCount = { min: 1, max: 17 }
param livekitMode = 'none'
param postgresZoneRedundantHa = true
param apiServerAuthorizedIpRanges = []
param namespace = 'voxfleet'
param serviceAccountPrefix = 'voxfleet'
param postgresAdminPassword = readEnvironmentVariable('VOXFLEET_PG_PASSWORD')
param appSecretKey = readEnvironmentVariable('VOXFLEET_SECRET_KEY')
param adminApiKey = readEnvironmentVariable('VOXFLEET_ADMIN_API_KEY')
param scalingToken = readEnvironmentVariable('VOXFLEET_SCALING_TOKEN')
param monitorAdminPassword = readEnvironmentVariable('VOXFLEET_MONITOR_ADMIN_PASSWORD')
param livekitApiKey = readEnvironmentVariable('VOXFLEET_LIVEKIT_API_KEY', '')
param livekitApiSecret = readEnvironmentVariable('VOXFLEET_LIVEKIT_API_SECRET', '')
param livekitUrl = readEnvironmentVariable('VOXFLEET_LIVEKIT_URL', '')
