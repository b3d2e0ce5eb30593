// The AKS cluster: OIDC issuer + workload identity (each role's pods get their
// own Azure identity), the KEDA add-on (agents scale on rooms), the Key Vault
// secrets provider (secrets as files), Azure CNI powered by Cilium (overlay,
// NetworkPolicy enforced by Cilium), application routing (Gateway API / NGINX),
// Container insights and managed Prometheus. Node pools: system; agents with
// the cluster autoscaler (tainted: only agent pods); optionally LiveKit (public
// IP per node for WebRTC media).

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Kubernetes version (one AKS supports: az aks get-versions -l <region>).')
param kubernetesVersion string

@description('Availability zones of the node pools (empty where the region has none).')
param zones array = ['1', '2', '3']

@description('VM size of the system pool (also runs landing and monitor).')
param systemVmSize string = 'Standard_D4ds_v5'

@description('Nodes of the system pool (min, max).')
param systemCount object = { min: 3, max: 6 }

@description('VM size of the agents pool: 8 vCPUs hold three 2-CPU agent pods.')
param agentVmSize string = 'Standard_D8ds_v5'

@description('Nodes of the agents pool (the cluster autoscaler stays within them).')
param agentCount object = { min: 1, max: 17 }

@description('Add the LiveKit node pool (self-hosted LiveKit).')
param enableLivekitPool bool = false

@description('VM size of the LiveKit pool.')
param livekitVmSize string = 'Standard_F8s_v2'

@description('Nodes of the LiveKit pool.')
param livekitCount object = { min: 2, max: 6 }

@description('Node subnet.')
param nodesSubnetId string

@description('LiveKit node subnet.')
param livekitSubnetId string

@description('Log Analytics workspace of Container insights.')
param logAnalyticsId string

@description('Addresses allowed to reach the API server (CIDRs); empty: any, with Entra ID auth.')
param apiServerAuthorizedIpRanges array = []

@description('Entra ID group IDs that administer the cluster.')
param adminGroupObjectIds array = []

var systemPool = {
  name: 'system'
  mode: 'System'
  vmSize: systemVmSize
  osType: 'Linux'
  osSKU: 'AzureLinux'
  osDiskType: 'Ephemeral'
  osDiskSizeGB: 128
  enableEncryptionAtHost: true
  availabilityZones: zones
  enableAutoScaling: true
  count: systemCount.min
  minCount: systemCount.min
  maxCount: systemCount.max
  maxPods: 110
  vnetSubnetID: nodesSubnetId
  upgradeSettings: { maxSurge: '33%' }
}

var agentPool = {
  name: 'agents'
  mode: 'User'
  vmSize: agentVmSize
  osType: 'Linux'
  osSKU: 'AzureLinux'
  osDiskType: 'Ephemeral'
  osDiskSizeGB: 128
  enableEncryptionAtHost: true
  availabilityZones: zones
  enableAutoScaling: true
  count: agentCount.min
  minCount: agentCount.min
  maxCount: agentCount.max
  maxPods: 50
  vnetSubnetID: nodesSubnetId
  nodeLabels: { 'voxfleet.io/pool': 'agents' }
  nodeTaints: ['voxfleet.io/pool=agents:NoSchedule']
  upgradeSettings: { maxSurge: '33%' }
}

resource aks 'Microsoft.ContainerService/managedClusters@2024-09-01' = {
  // checkov:skip=CKV_AZURE_115:a private API server needs a jump host or VPN to deploy from; restrict it with apiServerAuthorizedIpRanges instead
  // checkov:skip=CKV_AZURE_117:node disks use encryption at host with platform keys; a customer-managed disk encryption set is an option, not a default
  // checkov:skip=CKV_AZURE_8:the Kubernetes dashboard add-on no longer exists on the AKS versions this targets
  // checkov:skip=CKV_AZURE_172:enableSecretRotation is set, as the string 'true' the AKS API takes; the check expects a boolean
  // checkov:skip=CKV_AZURE_232:landing and monitor are small and share the system pool; taint it (onlyCriticalAddonsEnabled) once they get a pool of their own
  name: '${name}-aks'
  location: location
  tags: tags
  sku: {
    name: 'Base'
    tier: 'Standard'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    kubernetesVersion: kubernetesVersion
    dnsPrefix: name
    enableRBAC: true
    disableLocalAccounts: true
    aadProfile: {
      managed: true
      enableAzureRBAC: true
      adminGroupObjectIDs: adminGroupObjectIds
    }
    apiServerAccessProfile: {
      authorizedIPRanges: apiServerAuthorizedIpRanges
    }
    oidcIssuerProfile: { enabled: true }
    securityProfile: {
      workloadIdentity: { enabled: true }
      imageCleaner: { enabled: true, intervalHours: 48 }
    }
    workloadAutoScalerProfile: {
      keda: { enabled: true }
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
      nodeOSUpgradeChannel: 'NodeImage'
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      networkDataplane: 'cilium'
      networkPolicy: 'cilium'
      podCidr: '192.168.0.0/16'
      serviceCidr: '10.0.0.0/16'
      dnsServiceIP: '10.0.0.10'
      loadBalancerSku: 'standard'
      outboundType: 'loadBalancer'
    }
    ingressProfile: {
      webAppRouting: { enabled: true }
    }
    // The cluster autoscaler waits at most 600 s for an evicted pod: the chart's
    // maxGracePeriodSeconds keeps every grace period within it.
    autoScalerProfile: {
      'max-graceful-termination-sec': '600'
      'scale-down-unneeded-time': '10m'
      'balance-similar-node-groups': 'true'
      expander: 'least-waste'
    }
    addonProfiles: {
      azureKeyvaultSecretsProvider: {
        enabled: true
        config: {
          enableSecretRotation: 'true'
          rotationPollInterval: '2m'
        }
      }
      azurepolicy: { enabled: true }
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: logAnalyticsId
          useAADAuth: 'true'
        }
      }
    }
    azureMonitorProfile: {
      metrics: { enabled: true }
    }
    agentPoolProfiles: [systemPool, agentPool]
  }
}

resource livekit 'Microsoft.ContainerService/managedClusters/agentPools@2024-09-01' = if (enableLivekitPool) {
  // checkov:skip=CKV_AZURE_168:maxPods is 50 (below); checkov does not read the properties of a conditional resource
  // checkov:skip=CKV_AZURE_227:enableEncryptionAtHost is true (below); checkov does not read the properties of a conditional resource
  parent: aks
  name: 'livekit'
  properties: {
    mode: 'User'
    vmSize: livekitVmSize
    osType: 'Linux'
    osSKU: 'AzureLinux'
    osDiskType: 'Ephemeral'
    osDiskSizeGB: 64
    enableEncryptionAtHost: true
    availabilityZones: zones
    enableAutoScaling: true
    count: livekitCount.min
    minCount: livekitCount.min
    maxCount: livekitCount.max
    maxPods: 50
    // WebRTC media reaches each LiveKit node directly (UDP 50000-60000).
    enableNodePublicIP: true
    vnetSubnetID: livekitSubnetId
    nodeLabels: { 'voxfleet.io/pool': 'livekit' }
    nodeTaints: ['voxfleet.io/pool=livekit:NoSchedule']
    upgradeSettings: { maxSurge: '1' }
  }
}

output name string = aks.name
output oidcIssuerUrl string = aks.properties.oidcIssuerProfile.issuerURL
output kubeletObjectId string = aks.properties.identityProfile.kubeletidentity.objectId
