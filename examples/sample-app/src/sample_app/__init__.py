"""sample-app: a tiny HTTP service the devops-agent pipeline builds, scans and deploys."""
